package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Memory is a process's resident memory as the kernel accounts it
// (/proc/PID/status): VmHWM is the peak resident set over the process's
// life, VmRSS the resident set when read. Scope says whose it is: "server"
// when the server ran as a process of its own, "server+clients" when it ran
// inside the benchmark's process.
type Memory struct {
	Scope string `json:"scope"`
	PID   int    `json:"pid"`
	HWMMB int64  `json:"vm_hwm_mb"`
	RSSMB int64  `json:"vm_rss_mb"`
}

// ReadMemory reads VmHWM and VmRSS of pid (0: this process).
func ReadMemory(pid int, scope string) (Memory, error) {
	path := "/proc/self/status"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	} else {
		pid = os.Getpid()
	}
	f, err := os.Open(path)
	if err != nil {
		return Memory{}, err
	}
	defer f.Close()
	m := Memory{Scope: scope, PID: pid}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmHWM" && k != "VmRSS") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return m, fmt.Errorf("%s: %s: %v", path, k, err)
		}
		if k == "VmHWM" {
			m.HWMMB = kb / 1024
		} else {
			m.RSSMB = kb / 1024
		}
	}
	return m, sc.Err()
}
