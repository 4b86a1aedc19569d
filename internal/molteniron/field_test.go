package molteniron

import "testing"

// TestMIField checks that errors about ironpool fields name them the way a
// Molten Iron user sent them, list entries included.
func TestMIField(t *testing.T) {
	for in, want := range map[string]string{
		"bmc.address": "ipmi_ip", "bmc.username": "ipmi_user", "bmc.password": "ipmi_password",
		"macs": "port_hwaddr", "macs[1]": "port_hwaddr", "memory_mb": "ram_mb", "local_gb": "disk_gb",
		"pool": "node_pool", "owner": "owner_name", "cpus": "cpus", "name": "name", "fields.x": "fields.x",
	} {
		if got := miField(in); got != want {
			t.Errorf("miField(%q) = %q, want %q", in, got, want)
		}
	}
}
