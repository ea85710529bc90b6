"""Monitor for model rollouts on Cerebras dedicated inference endpoints.

The package is the content of the Lambda layer. Its layers, top to bottom:

- ``handlers`` live in ``functions/`` (outside the package) and only parse, call, return;
- the domain: :mod:`rollout_monitor.deploy`, :mod:`rollout_monitor.poller`,
  :mod:`rollout_monitor.alerts`, and the bus contract :mod:`rollout_monitor.events`;
- the adapters: :mod:`rollout_monitor.cerebras` (the Management API),
  :mod:`rollout_monitor.store` (DynamoDB), :mod:`rollout_monitor.bus` (EventBridge),
  :mod:`rollout_monitor.notifier` (SNS).
"""

__version__ = "0.1.0"
