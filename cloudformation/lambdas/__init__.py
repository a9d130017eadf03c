"""AWS Lambda sources of the project template: one subpackage per function (scripts/package-lambdas)."""
