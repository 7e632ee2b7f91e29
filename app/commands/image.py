"""`python -m app image build|build-app|hash`: build the sandbox image or the app image (the bot
and sandboxd), reusing a build of the same sources."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.ops.image import APP_IMAGE, ImageBuilder, ImageBuildError, app_builder, source_hash
from app.sandbox.docker_engine import DockerEngine
from app.sandbox.engine import EngineError, EngineUnavailable
from app.wiring import Components


def add_parser(sub) -> None:
    parser = sub.add_parser("image", help="build the sandbox image")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build",
        help="build (or reuse) the sandbox image",
        description="Build the sandbox image, tagged with a content hash of sandbox-image/ and as "
        "SANDBOX_IMAGE. An image with the same hash is reused. When the base image can be neither "
        "found nor pulled, a base is built from Debian packages with debootstrap (needs root).",
    )
    _build_options(build)
    build.set_defaults(handler=execute_build, app=False)
    app = actions.add_parser(
        "build-app",
        help="build (or reuse) the image of the bot and sandboxd (the root Dockerfile)",
        description="Build the app image (the bot and the sandbox service) from the root "
        "Dockerfile, tagged with a content hash of its sources and as --tag. Same base rules and "
        "CA options as `image build`, so it builds where nothing can be pulled.",
    )
    app.add_argument("--tag", default=APP_IMAGE, help=f"image to tag (default {APP_IMAGE})")
    _build_options(app)
    app.set_defaults(handler=execute_build, app=True)
    hashed = actions.add_parser("hash", help="print the content hash of sandbox-image/")
    hashed.set_defaults(handler=lambda args, parts: print(source_hash()) or 0)


def _build_options(build) -> None:
    build.add_argument("--base", help="base image (default: SANDBOX_BASE_IMAGE)")
    build.add_argument(
        "--debian-base",
        action="store_true",
        help="skip the registry: build the base from Debian packages right away",
    )
    build.add_argument(
        "--no-debian-base",
        action="store_true",
        help="fail instead of building a Debian base when the base cannot be pulled",
    )
    build.add_argument("--mirror", help="Debian mirror for debootstrap (default: from apt sources)")
    build.add_argument(
        "--extra-ca",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="PEM CA bundle pip should trust during the build; repeatable",
    )
    build.add_argument("--force", action="store_true", help="rebuild even if the hash exists")


def execute_build(args: argparse.Namespace, parts: Components) -> int:
    settings = parts.settings

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    engine = DockerEngine(timeout=900)  # builds and imports take long: its own, patient client
    try:
        engine.ping()
    except EngineUnavailable as exc:
        say(f"error: {exc}")
        engine.close()
        return 1
    if args.app:
        builder = app_builder(engine, args.tag, say)
    else:
        builder = ImageBuilder(engine, settings.sandbox_image, say, sbom_dir=parts.layout.sbom)
    base = args.base or settings.sandbox_base_image
    try:
        if args.debian_base:
            base = builder.debian_base(args.mirror)
        tag = builder.build(
            base_image=base,
            extra_ca=args.extra_ca,
            force=args.force,
            allow_debian_base=not args.no_debian_base,
            mirror=args.mirror,
            pip_index_url=settings.sandbox_pip_index_url,
            pip_extra_index_url=settings.sandbox_pip_extra_index_url,
        )
    except (ImageBuildError, EngineError, EngineUnavailable) as exc:
        say(f"error: {exc}")
        return 1
    finally:
        engine.close()
    print(tag)
    return 0
