package cli

import "github.com/spf13/cobra"

// examples are the Example sections of commands that do not set their own,
// by command path. examples_test.go checks that every runnable command has
// one and that every example line parses as a command line.
var examples = map[string]string{
	"ironpool admin reseal":      "  ironpool admin reseal",
	"ironpool admin rotate-key":  "  ironpool admin rotate-key --new-key-file /srv/ironpool/new.key",
	"ironpool allocation extend": `  ironpool allocation extend "$IRONPOOL_ALLOCATION_ID" --ttl 2h`,
	"ironpool allocation list": `  ironpool allocation list
  ironpool allocation list --owner lab1 --all
  ironpool allocation list --state queued -o value -c id`,
	"ironpool allocation show": `  ironpool allocation show "$ID"
  ironpool allocation show "$ID" -o value -c state
  ironpool allocation export "$ID" -o ansible > inventory.yaml`,
	"ironpool quota list":   "  ironpool quota list\n  ironpool quota list -o json",
	"ironpool quota show":   "  ironpool quota show 'ci-*'",
	"ironpool quota delete": "  ironpool quota delete 'ci-*' lab1",
	"ironpool reservation list": `  ironpool reservation list
  ironpool reservation list --owner lab1 --all -o json`,
	"ironpool reservation show": `  ironpool reservation show "$RID"
  ironpool reservation show "$RID" -o value -c allocation_id`,
	"ironpool reservation cancel": `  ironpool reservation cancel "$RID"`,
	"ironpool bench":              "  ironpool bench --nodes 10000 --clients 16 --duration 10s",
	"ironpool capacity":           "  ironpool capacity\n  ironpool capacity -o csv",
	"ironpool deploy":             `  ironpool deploy "$ID" --image http://127.0.0.1:8080/img.qcow2 --checksum "$SHA256" --wait --timeout 30m`,
	"ironpool events": `  ironpool events --since 1h
  ironpool events --subject allocation/"$ID"
  ironpool events --action allocation.created --tail 20 -o json`,
	"ironpool compose list":     "  ironpool compose list redfish+https://127.0.0.1:8443 --bmc-user admin --bmc-password-file pw",
	"ironpool node boot-device": "  ironpool node boot-device n1 pxe --once\n  ironpool node boot-device --allocation \"$ID\" disk",
	"ironpool node compose":     "  ironpool node compose c1 --service redfish+https://127.0.0.1:8443 --bmc-user admin --bmc-password-file pw --cpus 16 --memory-mb 65536",
	"ironpool node decompose":   "  ironpool node decompose c1",
	"ironpool node discover":    "  ironpool node discover redfish+https://127.0.0.1:8443 --bmc-user admin --bmc-password-file pw --pool lab --dry-run",
	"ironpool node health":      "  ironpool node health\n  ironpool node health n1",
	"ironpool flavor create":    "  ironpool flavor create standard --cpus 16 --memory-mb 65536\n  ironpool flavor create gpu --cpus 32 --trait CUSTOM_GPU --pool ci",
	"ironpool flavor delete":    "  ironpool flavor delete old-flavor",
	"ironpool flavor list":      "  ironpool flavor list\n  ironpool flavor list -o value -c name",
	"ironpool flavor show":      "  ironpool flavor show standard",
	"ironpool ironic sync":      "  ironpool ironic sync",
	"ironpool molteniron":       "  ironpool molteniron -c /etc/molteniron allocate job-42 2 default\n  ironpool molteniron -c /etc/molteniron release job-42",
	"ironpool node add": `  ironpool node add n1 --bmc ipmi://127.0.0.1:623 --bmc-user root --bmc-password-file pw \
      --mac 52:54:00:12:34:56 --cpus 32 --memory-mb 262144 --local-gb 500
  ironpool node add r1 --bmc redfish+https://127.0.0.1:8443/redfish/v1/Systems/1 --pool ci --trait CUSTOM_GPU`,
	"ironpool node adopt":       "  ironpool node adopt 0f0e8c2e-3b9a-4d61-9f55-2f1f6b0c6a11 --owner lab1",
	"ironpool node get":         "  ironpool node get n1 cpus\n  ironpool node get n1 fields.rack",
	"ironpool node import":      "  ironpool node import nodes.yaml\n  ironpool node export | ironpool --profile lab node import -",
	"ironpool node inspect":     "  ironpool node inspect n1",
	"ironpool node list":        "  ironpool node list --state available\n  ironpool node list --owner lab1 -o value -c name\n  ironpool node list --flavor standard -o csv",
	"ironpool node maintenance": `  ironpool node maintenance n1 on --reason "disk errors"` + "\n  ironpool node maintenance n1 off",
	"ironpool node manageable":  "  ironpool node manageable",
	"ironpool node power":       "  ironpool node power n1 status\n  ironpool node power n1 reboot",
	"ironpool node register":    "  ironpool node register n1",
	"ironpool node set":         "  ironpool node set n1 cpus=64 fields.rack=r12\n  ironpool node set n1 fields.rack=",
	"ironpool node show":        "  ironpool node show n1\n  ironpool node show n1 --reveal -o value -c bmc.password",
	"ironpool node unregister":  "  ironpool node unregister n1",
	"ironpool serve": `  ironpool serve
  ironpool serve --listen 127.0.0.1:8650 --data-dir /srv/ironpool --default-ttl 2h
  ironpool serve --db 'postgres://postgres@127.0.0.1:5432/ironpool?sslmode=disable' --replica-id r1`,
	"ironpool status":       "  ironpool status\n  ironpool status -o json",
	"ironpool token create": "  ironpool token create --role user --owner 'ci-*' --description 'CI jobs'\n  ironpool token create --role operator",
	"ironpool token list":   "  ironpool token list",
	"ironpool token revoke": "  ironpool token revoke tok-1bf4bed720d7",
	"ironpool undeploy":     `  ironpool undeploy "$ID" --wait`,
}

// addExamples fills in the Example of every command that has none.
func addExamples(c *cobra.Command) {
	if c.Example == "" {
		c.Example = examples[c.CommandPath()]
	}
	for _, sub := range c.Commands() {
		addExamples(sub)
	}
}
