"""Deploy exactly the approved model package: resolve -> staging -> staging tests -> prod, with boto3 only.

Each GitLab CI job is one command of `python -m deploy`; the same commands run on a laptop.
"""
