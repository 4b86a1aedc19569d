package ironic

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ironpool/ironpool"
)

// cloud is the part of one clouds.yaml entry ironpool reads itself: the
// entries that need no Keystone (auth_type none or http_basic, the way a
// standalone Ironic is configured for openstacksdk and the `baremetal`
// CLI), and the TLS options of every entry. Keystone entries are handed to
// gophercloud's parser.
type cloud struct {
	AuthType string `yaml:"auth_type"`
	Auth     struct {
		AuthURL  string `yaml:"auth_url"`
		Endpoint string `yaml:"endpoint"`
		Username string `yaml:"username"`
		Password string `yaml:"password"`
	} `yaml:"auth"`
	BaremetalEndpointOverride string `yaml:"baremetal_endpoint_override"`
	CACert                    string `yaml:"cacert"`
	Cert                      string `yaml:"cert"`
	Key                       string `yaml:"key"`
	// Verify is a *bool: absent means verify, as openstacksdk does.
	Verify *bool `yaml:"verify"`
}

// cloudFiles are where clouds.yaml is looked for, in openstacksdk's order,
// unless one file is named.
func cloudFiles(file string) []string {
	if file != "" {
		return []string{file}
	}
	if f := os.Getenv("OS_CLIENT_CONFIG_FILE"); f != "" {
		return []string{f}
	}
	files := []string{"clouds.yaml"}
	if home, err := os.UserHomeDir(); err == nil {
		files = append(files, filepath.Join(home, ".config", "openstack", "clouds.yaml"))
	}
	return append(files, "/etc/openstack/clouds.yaml")
}

// findCloud reads the named entry from the first clouds.yaml that exists.
func findCloud(name, file string) (*cloud, string, error) {
	for _, f := range cloudFiles(file) {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, f, ironpool.FieldErrorf("ironic.cloud", "cannot read %s: %v", f, err)
		}
		c, err := parseCloud(data, name)
		if err != nil {
			return nil, f, ironpool.FieldErrorf("ironic.cloud", "%s: %v", f, err)
		}
		return c, f, nil
	}
	return nil, "", ironpool.FieldErrorf("ironic.cloud", "no clouds.yaml found (looked in %s)", strings.Join(cloudFiles(file), ", "))
}

// parseCloud returns the named entry of a clouds.yaml document. It never
// panics, whatever the bytes (FuzzParseCloud).
func parseCloud(data []byte, name string) (*cloud, error) {
	var doc struct {
		Clouds map[string]*cloud `yaml:"clouds"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not a clouds.yaml: %v", err)
	}
	c := doc.Clouds[name]
	if c == nil {
		return nil, fmt.Errorf("no cloud named %q", name)
	}
	return c, nil
}

// keystoneFree reports whether the entry reaches Ironic directly, without
// Keystone, and returns the endpoint.
func (c *cloud) keystoneFree() (bool, string, error) {
	endpoint := c.BaremetalEndpointOverride
	if endpoint == "" {
		endpoint = c.Auth.Endpoint
	}
	switch strings.ToLower(c.AuthType) {
	case "none", "noauth", "http_basic":
	case "":
		if c.Auth.AuthURL != "" || endpoint == "" {
			return false, "", nil
		}
	default:
		return false, "", nil
	}
	if endpoint == "" {
		return true, "", fmt.Errorf("auth_type %s needs baremetal_endpoint_override (or auth.endpoint): the Ironic URL", c.AuthType)
	}
	if strings.EqualFold(c.AuthType, "http_basic") && (c.Auth.Username == "" || c.Auth.Password == "") {
		return true, "", fmt.Errorf("auth_type http_basic needs auth.username and auth.password")
	}
	return true, endpoint, nil
}

// tlsConfig builds the TLS settings the entry asks for (cacert, verify,
// cert/key); nil when it asks for none.
func (c *cloud) tlsConfig() (*tls.Config, error) {
	if c.CACert == "" && c.Verify == nil && c.Cert == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.Verify != nil && !*c.Verify {
		cfg.InsecureSkipVerify = true
	}
	if c.CACert != "" {
		pem, err := os.ReadFile(c.CACert)
		if err != nil {
			return nil, fmt.Errorf("cacert: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cacert %s holds no PEM certificate", c.CACert)
		}
		cfg.RootCAs = pool
	}
	if c.Cert != "" {
		pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("cert/key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
