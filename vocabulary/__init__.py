"""The platform's shared vocabulary: the words every other package uses.

- `settings`: every environment variable, in one typed model;
- `naming`: names and labels of Docker objects, the username rule, resource-name slugs;
- `scopes`: the platform's custom JupyterHub scopes and its built-in groups;
- `api`: the resource API version.

A leaf package: it imports nothing of the project (checked by `make lint`), so the hub's
configuration (`hub_config`) and the operator (`reconciler`) can both depend on it.
"""
