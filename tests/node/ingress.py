"""A stand-in for the ingress controller: a pod in the namespace the stacks admit to the gateway,
forwarding a port of the node (a hostPort) to the gateway's Service, so a client on the host reaches
the gateway the way the public does, through the NetworkPolicy that admits only the controller.

It is a TCP forwarder in one of the service images (the only images with Python here), not an HTTP
proxy: it does not read the Ingress' rules, which name the gateway for every path anyway. It looks
the gateway up only once a client has sent something: the kubelet's TCP probes, which start before
the stack exists, would otherwise ask the cluster DNS for a Service not made yet, and CoreDNS keeps
that "no such name" for up to 30 s (`cache 30`), failing the first requests after the deploy.
"""

from __future__ import annotations

from tests.e2e.cluster import LocalCluster
from tests.node.pods import Manifest, restricted_container

NAME = "ingress-stand-in"
HOST_PORT = 30080
PORT = 8080

FORWARDER = """
import asyncio, signal, sys

target_host, target_port = sys.argv[1], int(sys.argv[2])


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def handle(reader, writer):
    first = await reader.read(65536)
    if not first:  # a TCP probe: connected and left
        writer.close()
        return
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection(target_host, target_port)
    except OSError as exc:
        # Its log says why a client was hung up on (the tests show it when a request fails).
        print(f"no connection to {target_host}:{target_port}: {exc!r}", file=sys.stderr, flush=True)
        writer.close()
        return
    upstream_writer.write(first)
    await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer), return_exceptions=True)


async def main():
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    server = await asyncio.start_server(handle, "0.0.0.0", int(sys.argv[3]))
    async with server:
        await stop


asyncio.run(main())
"""


def log(cluster: LocalCluster, namespace: str) -> str:
    """What the forwarder wrote: the connections to the gateway it could not make."""
    return cluster.kubectl("logs", "-n", namespace, NAME, check=False)


def stand_in(namespace: str, image: str, target: str, target_port: int) -> list[Manifest]:
    """The namespace and the forwarding pod; ``target`` is the gateway Service's DNS name."""
    container = restricted_container(
        "forward", image, ["python", "-c", FORWARDER, target, str(target_port), str(PORT)]
    )
    container["ports"] = [{"name": "http", "containerPort": PORT, "hostPort": HOST_PORT, "protocol": "TCP"}]
    container["readinessProbe"] = {"tcpSocket": {"port": PORT}, "periodSeconds": 2}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": NAME, "namespace": namespace, "labels": {"app": NAME}},
        "spec": {
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "containers": [container],
        },
    }
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    return [ns, pod]
