"""A stateful subset of Twilio's voice REST API, served over loopback HTTP on the run's clock
(docs/simulator.md, "The REST API")."""

from simulator.rest.api import RestApi, RestError, RestRequest
from simulator.rest.server import LocalHttpClient, RestServer, local_client

__all__ = ["LocalHttpClient", "RestApi", "RestError", "RestRequest", "RestServer",
           "local_client"]
