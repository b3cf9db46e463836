"""FHIR R4 in: the gateway takes ED attendances as FHIR as readily as HL7 v2 ADT.

Three ways in, one way through:

    push          POST /fhir (transaction | batch | collection Bundle),
                  POST /fhir/{type}, PUT /fhir/{type}/{id}         routes.py, interactions.py
    subscription  POST /fhir/subscription-hook (R4 backport rest-hook, id-only or full)
                  -> fetch the named resources from the configured source  subscriptions.py
    polling       Encounter?class=EMER&_lastUpdated=gt..&_include=Encounter:subject
                  per configured source, watermark + backoff              poller.py

    validate (models.py: fhir.resources R4B, the only importer; checks.py: codes, NHS
    number, birth date) -> writer.py: resource store + inbox row per resource version,
    committed in groups before any answer -> the pipeline decodes channel "fhir" rows with
    channel.py's decoder (mapping.py: Encounter + Patient + Conditions + Observations ->
    AttendanceEvent) -> detection, candidates, as for HL7.

Who may send: API tokens per sending system, bound to a site (auth.py; the command is
`tokens create --site ODS --name NAME`, referral_gateway/entrypoints/token_commands.py).
Which servers the gateway fetches from: `[fhir.sources.*]` in the site configuration
(sources.py). The channel is built for the gateway in referral_gateway/wiring/fhir.py.
"""
