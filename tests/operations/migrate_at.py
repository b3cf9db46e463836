"""Run as a process of its own by the migration-lock test: wait until the given moment (Unix
time), then migrate the database at the URL, as every `referral-gateway` command does at
start. Exits non-zero with the error's type if the migration fails."""

from __future__ import annotations

import sys
import time

from referral_gateway.storage.database import make_engine, migrate


def main(url: str, at: float) -> int:
    engine = make_engine(url)
    time.sleep(max(0.0, at - time.time()))
    try:
        migrate(engine)
    except Exception as exc:
        print(f"migration failed: {type(exc).__name__}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2])))
