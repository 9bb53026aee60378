"""kubellm: put large language models into production on Kubernetes.

One `LLMService` spec (``kubellm.spec``) is the contract between the components:
``render`` turns it into Kubernetes objects, ``operator`` reconciles it in a cluster,
``local`` runs it on one machine, ``pull`` fetches its weights, ``sim`` simulates its
engines, ``gateway`` routes to them, ``autoscale`` sizes them and ``bench`` measures them.
"""

__version__ = "0.1.0"
