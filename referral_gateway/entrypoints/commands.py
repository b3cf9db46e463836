"""The one shape of a `referral-gateway` command module (`*_commands.py` here):

    add_parsers(sub, settings_args)   adds its subcommands' parsers to `sub`, each with the
                                      settings options (`settings_args`) where it needs them
    commands(settings_for)            maps each subcommand's name to the function that runs
                                      it: args in, exit code out, settings from
                                      `settings_for(args)` (the environment, then the options)

`cli.py` collects them; its own commands (serve, replay, reprocess, referrals, counts,
errors, demo) have the same shape inline.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from referral_gateway.config import Settings

SettingsArgs = Callable[[argparse.ArgumentParser], None]
SettingsFor = Callable[[argparse.Namespace], Settings]
Command = Callable[[argparse.Namespace], int]
