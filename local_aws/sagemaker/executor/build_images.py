"""`make images`: build every image environment now, so no test or step waits for a first build.

python -m local_aws.sagemaker.executor.build_images
"""

from __future__ import annotations

from local_aws.sagemaker.executor import images


def main() -> int:
    for found in images.build_all():
        state = f"built in {found.build_seconds:.1f} s" if found.build_seconds else "cached"
        print(f"    {found.image.framework} {found.image.version}: {state} ({found.root})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
