"""The composition root: everything that builds the gateway is built here, and nowhere else.

    gateway.py   settings in, a gateway out: the database engines (migrated), key ring,
                 inbox, intake (group commit), pipeline (on a thread, or in a process of its
                 own that `serve` hands in), the FHIR channel, audit and sharing
    database.py  the database (and key ring) for commands that run no gateway
    mllp.py      the MLLP listener: TLS, limits, the HL7 intake on the gateway's writer
    fhir.py      the FHIR channel: store, writer, tokens, subscriptions, poller and its schedule
    web.py       the web app: FHIR routes, operations JSON, reports, and the youth workers'
                 pages with their accounts, casework and live events (`install_web`)
    reports.py   reports: store, service, monthly push and its jobs, hub keys, the hub alone
    accounts.py  staff accounts and sessions (the gateway's pages and the hub alone share them)

Entry points (`referral_gateway.entrypoints`) and tests import from here; nothing here
imports an entry point, and nothing here reads the environment: settings come in as a
`Settings`, and tests hand in fakes (`build_gateway(settings, clock=..., keyring=...)`).
"""
