#!/usr/bin/env python3
"""A Molten Iron client written from docs/molteniron-protocol.md, stdlib only.

It behaves like the stock `molteniron` CLI: the same global options
(-c/--conf-dir, -o/--output json|result), the same commands and positional
arguments, the same request bodies (every argparse field, plus "method"),
the reply printed verbatim (or only its "result"), and the same exit status
(0 when the reply's status is 200, else the status, which the shell sees mod
256). It exists so ironpool's Molten Iron listener is tested by an
independent implementation of the protocol, not only by ironpool's own
`ironpool molteniron`.

Extra, for the test: `hook_ipmiblob OWNER COUNT [POOL] --hardware-info F
--localrc F` does what upstream's CI hook (utils/test_hook_mi_ipmiblob.py)
does with an allocate reply, and `raw JSON` posts a body as it is.
"""

import argparse
import http.client
import json
import os
import sys

DEFAULT_CONF = {"serverIP": "127.0.0.1", "mi_port": 5656}


def read_conf(conf_dir):
    """Read serverIP and mi_port from CONF_DIR/conf.yaml.

    conf.yaml is flat "key: value" YAML; reading it by hand keeps the client
    free of PyYAML.
    """
    conf = dict(DEFAULT_CONF)
    if conf_dir is None:
        return conf
    if not os.path.isdir(conf_dir):
        print("Error: %s is not a valid directory" % (conf_dir,), file=sys.stderr)
        sys.exit(1)
    with open(os.path.join(conf_dir, "conf.yaml")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if ":" not in line:
                continue
            key, value = (s.strip() for s in line.split(":", 1))
            conf[key] = value.strip("\"'")
    return conf


class MoltenIron:
    """Sends Molten Iron requests: one POST of a JSON object per request,
    the outcome in the reply's "status"."""

    def __init__(self, conf, timeout=30):
        self.host = str(conf["serverIP"])
        self.port = int(conf["mi_port"])
        self.timeout = timeout

    def send_raw(self, body):
        """POST body (str) and return (HTTP status, reply text)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("POST", "/", body)
            resp = conn.getresponse()
            return resp.status, resp.read().decode("utf-8")
        finally:
            conn.close()

    def send(self, request):
        """Send a request dict and return (reply text, reply dict)."""
        _, text = self.send_raw(json.dumps(request))
        return text, json.loads(text)


def build_parser():
    parser = argparse.ArgumentParser(prog="mi_client.py", description="Molten Iron test client")
    parser.add_argument("-c", "--conf-dir", dest="conf_dir", help="directory holding conf.yaml")
    parser.add_argument("-o", "--output", dest="output", default="json", help="json (default) or result")
    sub = parser.add_subparsers(dest="method")

    sp = sub.add_parser("add_baremetal")
    for name in ("name", "ipmi_ip", "ipmi_user", "ipmi_password", "allocation_pool", "port_hwaddr", "cpu_arch"):
        sp.add_argument(name)
    for name in ("cpus", "ram_mb", "disk_gb"):
        sp.add_argument(name, type=int)
    sp.add_argument("node_pool", nargs="?", default="default")

    sp = sub.add_parser("add_keyvalue_pairs")
    for name in ("name", "ipmi_ip", "allocation_pool"):
        sp.add_argument(name)
    # As upstream: REMAINDER swallows everything, node_pool stays "default".
    sp.add_argument("args", nargs=argparse.REMAINDER)
    sp.add_argument("node_pool", nargs="?", default="default")

    sp = sub.add_parser("add_json_blob")
    for name in ("name", "ipmi_ip", "allocation_pool", "blob"):
        sp.add_argument(name)
    sp.add_argument("node_pool", nargs="?", default="default")

    sp = sub.add_parser("allocate")
    sp.add_argument("owner_name")
    sp.add_argument("number_of_nodes", type=int)
    sp.add_argument("node_pool", nargs="?", default="default")

    sp = sub.add_parser("release")
    sp.add_argument("owner_name")

    sp = sub.add_parser("get_field")
    sp.add_argument("owner_name")
    sp.add_argument("field_name")

    sp = sub.add_parser("set_field")
    for name in ("id", "key", "value", "type"):
        sp.add_argument(name)

    for name in ("status", "status_baremetal"):
        sp = sub.add_parser(name)
        sp.add_argument("-t", "--type", dest="type", default="human")

    sub.add_parser("delete_db")

    sp = sub.add_parser("hook_ipmiblob")
    sp.add_argument("owner_name")
    sp.add_argument("number_of_nodes", type=int)
    sp.add_argument("node_pool", nargs="?", default="default")
    sp.add_argument("--hardware-info", required=True)
    sp.add_argument("--localrc", required=True)

    sp = sub.add_parser("raw")
    sp.add_argument("body")
    return parser


def hook_ipmiblob(mi, args):
    """What the devstack CI hook does: allocate, then write devstack's
    hardware_info ("ipmi_ip port_hwaddr ipmi_user ipmi_password" per node)
    and append the node specs and allocation pools to localrc."""
    text, reply = mi.send({"owner_name": args.owner_name, "number_of_nodes": args.number_of_nodes,
                           "node_pool": args.node_pool, "method": "allocate"})
    if reply.get("status") != 200:
        print(text)
        return reply.get("status", 444)
    hw, pools = [], []
    for key in sorted(reply["nodes"], key=lambda k: int(k.split("_")[1])):
        node = reply["nodes"][key]
        blob = json.loads(node["blob"])
        hw.append("%s %s %s %s" % (node["ipmi_ip"], blob["port_hwaddr"], blob["ipmi_user"], blob["ipmi_password"]))
        ips = node["allocation_pool"].split(",")
        pools.append("start=%s,end=%s" % (ips[0], ips[-1]))
    with open(args.hardware_info, "w") as f:
        f.write("\n".join(hw) + "\n")
    with open(args.localrc, "a") as f:
        f.write("IRONIC_HW_ARCH=%s\n" % blob["cpu_arch"])
        f.write("IRONIC_HW_NODE_CPU=%s\n" % blob["cpus"])
        f.write("IRONIC_HW_NODE_RAM=%s\n" % blob["ram_mb"])
        f.write("IRONIC_HW_NODE_DISK=%s\n" % blob["disk_gb"])
        f.write('ALLOCATION_POOL="%s"\n' % " --allocation-pool ".join(pools))
    return 0


def main(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    output = args.output.lower()
    if output not in ("json", "result"):
        parser.error("Unknown output type %s" % (output,))
    if args.method is None:
        parser.error("a command is required")
    mi = MoltenIron(read_conf(args.conf_dir))
    if args.method == "hook_ipmiblob":
        return hook_ipmiblob(mi, args)
    if args.method == "raw":
        status, text = mi.send_raw(args.body)
        print(status, text)
        return 0
    request = vars(args)  # every argparse field, as the stock client sends
    text, reply = mi.send(request)
    if output == "json":
        print(text)
    else:
        print(reply["result"])
    if "status" not in reply:
        print("Error: Server returned: %s" % (reply,))
        return 444
    return 0 if reply["status"] == 200 else reply["status"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
