package cli

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/ironpool/ironpool"
)

// Every serve flag can also come from an environment variable and from the
// --config YAML file. Precedence, highest first: the flag on the command
// line, then IRONPOOL_<FLAG> in the environment, then the file's key, then
// the flag's default. One table (the flag set) drives all three, so a new
// flag gets its key and variable without further code, and docs/CONFIG.md
// is generated from it (TestConfigDoc).

// configKey is the YAML key of a flag: its name with '_' for '-'.
func configKey(flag string) string { return strings.ReplaceAll(flag, "-", "_") }

// envName is the environment variable of a flag.
func envName(flag string) string { return "IRONPOOL_" + strings.ToUpper(configKey(flag)) }

// configFlags returns the flags that have a key and a variable: all of
// serve's own but --config itself and --help, and --data-dir, which every
// command shares but a server's configuration must be able to set.
func configFlags(c *cobra.Command) []*pflag.Flag {
	var out []*pflag.Flag
	c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
		if f.Name != "config" && f.Name != "help" {
			out = append(out, f)
		}
	})
	if f := c.InheritedFlags().Lookup("data-dir"); f != nil {
		out = append(out, f)
		slices.SortFunc(out, func(a, b *pflag.Flag) int { return strings.Compare(a.Name, b.Name) })
	}
	return out
}

// isList reports whether a flag takes many values (repeatable).
func isList(f *pflag.Flag) bool {
	t := f.Value.Type()
	return strings.HasSuffix(t, "Slice") || strings.HasSuffix(t, "Array")
}

// applyConfig fills every flag not given on the command line from the
// environment or, failing that, from the config file (--config, or
// IRONPOOL_CONFIG). It checks the whole file before setting anything: an
// unknown key, a nested value or a value of the wrong shape is an error
// naming the key.
func (a *app) applyConfig(c *cobra.Command, file string) error {
	if file == "" {
		file = a.env.Getenv("IRONPOOL_CONFIG")
	}
	fromFile := map[string]any{}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return ironpool.FieldErrorf("config", "cannot read %s: %v", file, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&fromFile); err != nil && err.Error() != "EOF" {
			return ironpool.FieldErrorf("config", "%s is not a YAML mapping of settings: %v", file, err)
		}
		if fromFile == nil {
			fromFile = map[string]any{}
		}
	}
	flags := map[string]*pflag.Flag{}
	for _, f := range configFlags(c) {
		flags[configKey(f.Name)] = f
	}
	keys := make([]string, 0, len(fromFile))
	for k := range fromFile {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fileValues := map[string][]string{}
	for _, k := range keys {
		f, ok := flags[k]
		if !ok {
			return ironpool.FieldErrorf(k, "unknown key in %s (the keys are serve's flags with '_' for '-'; see docs/CONFIG.md)", file)
		}
		vals, err := yamlValues(f, fromFile[k])
		if err != nil {
			return ironpool.FieldErrorf(k, "in %s: %v", file, err)
		}
		fileValues[k] = vals
	}
	for _, f := range configFlags(c) {
		if f.Changed {
			continue
		}
		var vals []string
		source := ""
		if v := a.env.Getenv(envName(f.Name)); v != "" {
			vals, source = []string{v}, envName(f.Name)
			if isList(f) {
				vals = strings.Split(v, ",")
			}
		} else if fv, ok := fileValues[configKey(f.Name)]; ok {
			vals, source = fv, file
		} else {
			continue
		}
		if isList(f) {
			// A list from the environment or the file replaces the default.
			if sv, ok := f.Value.(pflag.SliceValue); ok {
				if err := sv.Replace(vals); err != nil {
					return ironpool.FieldErrorf(f.Name, "from %s: %v", source, err)
				}
				f.Changed = true
				continue
			}
		}
		for _, v := range vals {
			if err := f.Value.Set(v); err != nil {
				return ironpool.FieldErrorf(f.Name, "from %s: %v", source, err)
			}
		}
		f.Changed = true
	}
	return nil
}

// yamlValues turns one YAML value into the strings the flag's Set takes:
// a scalar is one; a list is many, and only for a repeatable flag.
func yamlValues(f *pflag.Flag, v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, fmt.Errorf("has no value")
	case []any:
		if !isList(f) {
			return nil, fmt.Errorf("is a list, but --%s takes one value", f.Name)
		}
		out := make([]string, 0, len(v))
		for _, e := range v {
			switch e.(type) {
			case []any, map[string]any, nil:
				return nil, fmt.Errorf("list items must be plain values")
			}
			out = append(out, fmt.Sprint(e))
		}
		return out, nil
	case map[string]any:
		return nil, fmt.Errorf("is a mapping; settings are flat (key: value)")
	}
	return []string{fmt.Sprint(v)}, nil
}
