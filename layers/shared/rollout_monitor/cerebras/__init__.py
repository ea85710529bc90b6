"""Adapter for the Cerebras Management API.

``models`` (the API's shapes), ``status`` (the rollout statuses), ``errors`` (typed errors),
``names`` (identifiers), ``client`` (the sync and async clients) and ``credentials`` (the key
and the clients built from settings). Import what you need from its module: importing this
package loads no HTTP client, so the domain can use the models and errors alone.
"""
