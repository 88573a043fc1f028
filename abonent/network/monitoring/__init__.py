"""Monitoring of the NAS and the address pools (docs/radius.md, "Monitoring").

A periodic sampler (``sampler.take_samples``, every five minutes) writes one ``NasSample`` per NAS (sessions
online, traffic and authentications since the run before, CoA failures) and keeps ``NasHealth`` (the newest
accounting seen from each NAS) and ``PoolUsage`` (addresses in use per pool) current; ``health`` decides from
those rows, without touching sessions, whether a NAS has gone silent and how full a pool is. The pages, the
dashboard and ``/metrics`` read these few rows rather than counting the sessions table.
"""
