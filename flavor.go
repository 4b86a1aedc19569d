package ironpool

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Constraints select nodes: minimums for the sizes, exact matches for the rest.
// The zero value matches every node.
type Constraints struct {
	CPUs          int      `json:"cpus,omitempty"`
	MemoryMB      int64    `json:"memory_mb,omitempty"`
	LocalGB       int64    `json:"local_gb,omitempty"`
	CPUArch       string   `json:"cpu_arch,omitempty"`
	ResourceClass string   `json:"resource_class,omitempty"`
	Traits        []string `json:"traits,omitempty"`
	Pool          string   `json:"pool,omitempty"`
}

// Matches reports whether node n satisfies c (ignoring the node's state).
func (c *Constraints) Matches(n *Node) bool {
	if n.CPUs < c.CPUs || n.MemoryMB < c.MemoryMB || n.LocalGB < c.LocalGB {
		return false
	}
	if c.CPUArch != "" && n.CPUArch != c.CPUArch {
		return false
	}
	if c.ResourceClass != "" && n.ResourceClass != c.ResourceClass {
		return false
	}
	if c.Pool != "" && n.Pool != c.Pool {
		return false
	}
	for _, t := range c.Traits {
		if _, ok := slices.BinarySearch(n.Traits, t); !ok {
			return false
		}
	}
	return true
}

// Validate checks c and normalizes its traits. prefix names the field path.
func (c *Constraints) Validate(prefix string) error {
	if c.CPUs < 0 {
		return FieldErrorf(prefix+"cpus", "must not be negative (got %d)", c.CPUs)
	}
	if c.CPUs > MaxCPUs {
		return FieldErrorf(prefix+"cpus", "is %d; no node has more than %d", c.CPUs, MaxCPUs)
	}
	if c.MemoryMB < 0 {
		return FieldErrorf(prefix+"memory_mb", "must not be negative (got %d)", c.MemoryMB)
	}
	if c.MemoryMB > MaxSize {
		return FieldErrorf(prefix+"memory_mb", "is %d; no node has more than %d", c.MemoryMB, int64(MaxSize))
	}
	if c.LocalGB < 0 {
		return FieldErrorf(prefix+"local_gb", "must not be negative (got %d)", c.LocalGB)
	}
	if c.LocalGB > MaxSize {
		return FieldErrorf(prefix+"local_gb", "is %d; no node has more than %d", c.LocalGB, int64(MaxSize))
	}
	if c.CPUArch != "" && (len(c.CPUArch) > 32 || !archPattern.MatchString(c.CPUArch)) {
		return FieldErrorf(prefix+"cpu_arch", "%q must be lower-case letters, digits or '_'", truncate(c.CPUArch, 40))
	}
	if c.ResourceClass != "" {
		if err := ValidateName(prefix+"resource_class", c.ResourceClass); err != nil {
			return err
		}
	}
	if c.Pool != "" {
		if err := ValidateName(prefix+"pool", c.Pool); err != nil {
			return err
		}
	}
	traits, err := NormalizeTraits(prefix+"traits", c.Traits)
	if err != nil {
		return err
	}
	if len(traits) == 0 {
		traits = nil
	}
	c.Traits = traits
	return nil
}

// String renders c in the --constraint syntax.
func (c Constraints) String() string {
	var parts []string
	if c.CPUs > 0 {
		parts = append(parts, fmt.Sprintf("cpus>=%d", c.CPUs))
	}
	if c.MemoryMB > 0 {
		parts = append(parts, fmt.Sprintf("memory_mb>=%d", c.MemoryMB))
	}
	if c.LocalGB > 0 {
		parts = append(parts, fmt.Sprintf("local_gb>=%d", c.LocalGB))
	}
	if c.CPUArch != "" {
		parts = append(parts, "arch="+c.CPUArch)
	}
	if c.ResourceClass != "" {
		parts = append(parts, "resource_class="+c.ResourceClass)
	}
	for _, t := range c.Traits {
		parts = append(parts, "trait="+t)
	}
	if c.Pool != "" {
		parts = append(parts, "pool="+c.Pool)
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, ",")
}

// ParseConstraints parses the CLI's --constraint syntax:
// "cpus>=16,memory_mb>=65536,arch=x86_64,trait=CUSTOM_GPU,pool=ci".
func ParseConstraints(field, s string) (Constraints, error) {
	var c Constraints
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		// key>=N and key=N both set a minimum.
		key, val := "", ""
		if k, v, ok := strings.Cut(part, ">="); ok {
			key, val = k, v
		} else if k, v, ok := strings.Cut(part, "="); ok {
			key, val = k, v
		} else {
			return c, FieldErrorf(field, "%q is not key>=N or key=value", truncate(part, 40))
		}
		key = strings.TrimSpace(key)
		val = strings.TrimSpace(val)
		num := func() (int64, error) {
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				return 0, FieldErrorf(field+"."+key, "%q is not a non-negative whole number", truncate(val, 20))
			}
			return n, nil
		}
		switch key {
		case "cpus", "memory_mb", "local_gb":
			n, err := num()
			if err != nil {
				return c, err
			}
			switch key {
			case "cpus":
				c.CPUs = int(n)
			case "memory_mb":
				c.MemoryMB = n
			case "local_gb":
				c.LocalGB = n
			}
		case "arch", "cpu_arch":
			c.CPUArch = val
		case "resource_class":
			c.ResourceClass = val
		case "trait":
			c.Traits = append(c.Traits, val)
		case "pool":
			c.Pool = val
		default:
			return c, FieldErrorf(field, "unknown constraint %q (want cpus, memory_mb, local_gb, arch, resource_class, trait or pool)", truncate(key, 30))
		}
	}
	return c, c.Validate(field + ".")
}

// Flavor is a named set of constraints.
type Flavor struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Constraints
	CreatedAt time.Time `json:"created_at"`
}

// Validate checks the flavor.
func (f *Flavor) Validate() error {
	if err := ValidateName("name", f.Name); err != nil {
		return err
	}
	if len(f.Description) > MaxReasonLen {
		return FieldErrorf("description", "is too long (limit %d)", MaxReasonLen)
	}
	if err := ValidateText("description", f.Description); err != nil {
		return err
	}
	return f.Constraints.Validate("")
}

// FlavorService manages flavors.
type FlavorService interface {
	// CreateFlavor adds a flavor; ECONFLICT if the name is taken.
	CreateFlavor(ctx context.Context, f *Flavor) error
	// FindFlavors lists flavors by name.
	FindFlavors(ctx context.Context) ([]*Flavor, error)
	// FindFlavor returns one flavor or ENOTFOUND.
	FindFlavor(ctx context.Context, name string) (*Flavor, error)
	// DeleteFlavor removes a flavor; ENOTFOUND if absent.
	DeleteFlavor(ctx context.Context, name string) error
}
