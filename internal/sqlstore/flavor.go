package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/ironpool/ironpool"
)

// CreateFlavor adds a flavor.
func (s *Store) CreateFlavor(ctx context.Context, f *ironpool.Flavor) error {
	f.CreatedAt = s.Now().UTC()
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO flavors (name, description, cpus, memory_mb, local_gb, cpu_arch,
			resource_class, traits, pool, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)`,
			f.Name, f.Description, f.CPUs, f.MemoryMB, f.LocalGB, f.CPUArch, f.ResourceClass,
			joinTraits(f.Traits), f.Pool, ms(f.CreatedAt))
		if _, ok := s.Dialect.Unique(err); ok {
			return &ironpool.Error{Code: ironpool.ECONFLICT, Field: "name", Message: fmt.Sprintf("a flavor named %q exists already", f.Name)}
		} else if err != nil {
			return err
		}
		return s.insertEvent(ctx, tx, "flavor.created", "flavor/"+f.Name, f.Name+": "+f.Constraints.String())
	})
}

const flavorColumns = `name, description, cpus, memory_mb, local_gb, cpu_arch, resource_class, traits, pool, created_at`

func scanFlavor(sc interface{ Scan(...any) error }) (*ironpool.Flavor, error) {
	var f ironpool.Flavor
	var traits string
	var created int64
	if err := sc.Scan(&f.Name, &f.Description, &f.CPUs, &f.MemoryMB, &f.LocalGB, &f.CPUArch,
		&f.ResourceClass, &traits, &f.Pool, &created); err != nil {
		return nil, err
	}
	if t := splitTraits(traits); len(t) > 0 {
		f.Traits = t
	}
	f.CreatedAt = fromMS(created)
	return &f, nil
}

// FindFlavors lists flavors by name.
func (s *Store) FindFlavors(ctx context.Context) ([]*ironpool.Flavor, error) {
	rows, err := s.R.QueryContext(ctx, `SELECT `+flavorColumns+` FROM flavors ORDER BY name`)
	if err != nil {
		return nil, s.unavailable(err)
	}
	defer rows.Close()
	out := []*ironpool.Flavor{}
	for rows.Next() {
		f, err := scanFlavor(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// FindFlavor returns one flavor, through the flavor cache: a flavor is
// only ever created or deleted, and a deletion empties the cache of every
// replica (at once here, on the others when they hear it on TokenChannel,
// and within TokenCacheBound if they do not). A name not found is read
// again every time.
func (s *Store) FindFlavor(ctx context.Context, name string) (*ironpool.Flavor, error) {
	return cached(&s.flavors, name, cloneFlavor, func() (*ironpool.Flavor, error) {
		f, err := scanFlavor(s.R.QueryRowContext(ctx, `SELECT `+flavorColumns+` FROM flavors WHERE name = $1`, name))
		if err == sql.ErrNoRows {
			return nil, &ironpool.Error{Code: ironpool.ENOTFOUND, Field: "flavor", Message: fmt.Sprintf("no flavor named %q", name),
				Hint: "list flavors with `ironpool flavor list`"}
		}
		return f, s.unavailable(err)
	})
}

// cloneFlavor copies f so that callers cannot change the cached value.
func cloneFlavor(f *ironpool.Flavor) *ironpool.Flavor {
	c := *f
	c.Traits = slices.Clone(f.Traits)
	return &c
}

// DeleteFlavor removes a flavor. Allocations keep the constraints they were
// made with, so deleting a flavor never changes a lease. The flavor cache
// is emptied before and after, as RevokeToken empties the token cache,
// and the other replicas are told on TokenChannel.
func (s *Store) DeleteFlavor(ctx context.Context, name string) error {
	s.flavors.invalidate()
	defer s.flavors.invalidate()
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM flavors WHERE name = $1`, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &ironpool.Error{Code: ironpool.ENOTFOUND, Field: "name", Message: fmt.Sprintf("no flavor named %q", name)}
		}
		if err := s.announceRevocation(ctx, tx); err != nil {
			return err
		}
		return s.insertEvent(ctx, tx, "flavor.deleted", "flavor/"+name, "deleted "+name)
	})
}
