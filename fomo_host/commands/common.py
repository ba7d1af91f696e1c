"""Helpers shared by the commands: plugin loading, spec reading, the main-process check."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..plugins import PluginHost, load_plugins, warn_about_errors
from ..process import is_main_process
from ..spec import RunSpec
from ..spec_loading import load_spec


def load_host(quiet: bool = False) -> PluginHost:
    host = load_plugins()
    if not quiet and is_main_process():
        warn_about_errors(host)
    return host


def read_spec(args: argparse.Namespace, host: PluginHost) -> RunSpec:
    return load_spec(Path(args.spec), list(args.set or []), host.registry, schema_only=getattr(args, "schema_only", False))


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="the spec file (TOML)")
    parser.add_argument(
        "--set", action="append", metavar="KEY.PATH=VALUE", help="override a spec value (TOML syntax), e.g. optimizer.lr=1e-4"
    )
