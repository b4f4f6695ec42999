"""The cluster side: a list+watch cache of the batches' Deployments (informer.py) over
plain requests to the Deployments API (api.py)."""
