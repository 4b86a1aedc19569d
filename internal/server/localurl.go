package server

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// LocalURLFile is the file in the data directory where a running server
// records the URLs it answers on. The CLI sends the data directory's
// admin.token, when no token is given, only to a loopback URL listed
// there: a token for this server must not go to whatever else listens on
// a loopback port (another program, or a server on another data dir).
const LocalURLFile = "server.url"

// localURLs lists the URLs clients on this host may use for addr: a server
// bound to every interface is reached as 127.0.0.1, localhost or [::1].
func localURLs(scheme, addr string) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return []string{scheme + "://" + addr}
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return []string{scheme + "://127.0.0.1:" + port, scheme + "://localhost:" + port, scheme + "://[::1]:" + port}
	}
	urls := []string{scheme + "://" + net.JoinHostPort(host, port)}
	if ip := net.ParseIP(host); ip != nil && ip.Equal(net.IPv4(127, 0, 0, 1)) {
		urls = append(urls, scheme+"://localhost:"+port)
	}
	return urls
}

// writeLocalURLs records the server's URLs (mode 0600, like admin.token)
// and returns the closer that removes them when the server stops.
func (m *Main) writeLocalURLs(scheme string) (func() error, error) {
	path := filepath.Join(m.DataDir, LocalURLFile)
	data := strings.Join(localURLs(scheme, m.Addr), "\n") + "\n"
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	return func() error {
		// Only our own record: a newer server on this data dir may have
		// replaced it.
		if b, err := os.ReadFile(path); err == nil && string(b) == data {
			return os.Remove(path)
		}
		return nil
	}, nil
}

// IsLocalURL reports whether a server running on dataDir recorded url as
// its own, so the CLI may send it that directory's admin.token.
func IsLocalURL(dataDir, url string) bool {
	b, err := os.ReadFile(filepath.Join(dataDir, LocalURLFile))
	if err != nil {
		return false
	}
	return slices.Contains(strings.Fields(string(b)), strings.TrimRight(url, "/"))
}
