"""The usage ledger (docs/usage.md): who ran what, for how long, using how much.

- `tables`: the ledger's tables in the hub database (sessions, samples, hourly and daily
  roll-ups, storage surveys);
- `sessions`: a server's start and stop, recorded by the hub (the spawner) and squared with
  the hub's REST record by the reconciler's resync;
- `rollups`: a sample in, the roll-ups updated as it arrives; trimming by age;
- `sampler` and `storage`: what the reconciler measures on the engine;
- `report`: the report query the CLI, the REST API, the Usage page and the quotas read.
"""
