package cli

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ironpool/ironpool"
)

// Client configuration: named profiles for several servers, in
// ~/.config/ironpool/config.yaml (or $XDG_CONFIG_HOME/ironpool/config.yaml,
// or the file $IRONPOOL_CONFIG names):
//
//	default: lab
//	profiles:
//	  lab:
//	    url: https://ironpool.lab:8650
//	    token_file: ~/.config/ironpool/lab.token
//	    ca_file: ~/.config/ironpool/lab-ca.pem
//	  local:
//	    url: http://127.0.0.1:8650
//	    data_dir: /srv/ironpool
//
// The profile is --profile, else $IRONPOOL_PROFILE, else `default`. Flags
// and IRONPOOL_* variables win over the profile, which wins over the
// built-in defaults. The token is read from a file, so the config file
// itself holds no secret.

// profile is one server's client settings.
type profile struct {
	URL       string `yaml:"url"`
	TokenFile string `yaml:"token_file"`
	CAFile    string `yaml:"ca_file"`
	Insecure  bool   `yaml:"insecure"`
	DataDir   string `yaml:"data_dir"`
}

type clientConfig struct {
	Default  string             `yaml:"default"`
	Profiles map[string]profile `yaml:"profiles"`
}

// configPath is where the client config is looked for.
func (a *app) configPath() string {
	if p := a.env.Getenv("IRONPOOL_CONFIG"); p != "" {
		return p
	}
	if x := a.env.Getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "ironpool", "config.yaml")
	}
	home := a.env.Getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".config", "ironpool", "config.yaml")
}

// expandHome turns a leading ~/ into the home directory.
func (a *app) expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		home := a.env.Getenv("HOME")
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		return filepath.Join(home, rest)
	}
	return p
}

// activeProfile returns the selected profile (zero when there is no config
// and none was asked for) and its name. A profile that was asked for and
// does not exist is an error, as is a config file that does not parse.
func (a *app) activeProfile() (profile, string, error) {
	name, asked := a.profile, a.profile != ""
	if name == "" {
		name = a.env.Getenv("IRONPOOL_PROFILE")
		asked = name != ""
	}
	path := a.configPath()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if asked {
			return profile{}, "", ironpool.FieldErrorf("profile", "%q: there is no config file %s", name, path)
		}
		return profile{}, "", nil
	} else if err != nil {
		return profile{}, "", ironpool.FieldErrorf("config", "cannot read %s: %v", path, err)
	}
	var cfg clientConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) { // an empty file is an empty config
		return profile{}, "", ironpool.FieldErrorf("config", "%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if name == "" {
		name = cfg.Default
	}
	if name == "" {
		return profile{}, "", nil
	}
	p, ok := cfg.Profiles[name]
	if !ok {
		var have []string
		for k := range cfg.Profiles {
			have = append(have, k)
		}
		sort.Strings(have)
		return profile{}, "", ironpool.FieldErrorf("profile", "no profile %q in %s (have %s)", name, path, strings.Join(have, ", "))
	}
	p.TokenFile, p.CAFile, p.DataDir = a.expandHome(p.TokenFile), a.expandHome(p.CAFile), a.expandHome(p.DataDir)
	return p, name, nil
}
