"""Clients of the outside world: the JupyterHub REST API, the Docker engine, the labs."""
