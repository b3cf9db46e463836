"""The domain core: attendances, detection, referrals, reporting.

Plain Python only. Nothing in this package may import a web, database, HL7 or FHIR
library; adapters translate wire formats into these types at the edge.
"""
