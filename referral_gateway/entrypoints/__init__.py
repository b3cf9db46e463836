"""Where control comes in: each entry point builds what it runs through the composition root
(`referral_gateway.wiring`) and runs it.

    cli.py               `referral-gateway`: serve, replay, reprocess, referrals, counts,
                         errors, demo, and the command modules below
    commands.py          the one shape of a command module: `add_parsers` + `commands`
    account_commands.py  users add | list | disable | enable | set-password
    consent_commands.py  keys rotate | reencrypt | status | retire, audit verify
    report_commands.py   report, report-push, hub
    token_commands.py    tokens create | list | revoke (FHIR sending systems)
    replay.py            HL7 files through the same intake and pipeline as the live feed
    pipeline_process.py  the pipeline's own process under `serve` (both sides of the pipes)
    jobs.py              the job runner: retention and escalation on a background scheduler
"""
