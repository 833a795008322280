// Package imaged is the domain core of the imaged image service: the
// vocabulary (images, members, identities), the error kinds, and the
// interfaces that the outer packages implement (metadata stores, policy) or
// call (the image service). It imports nothing of the project and no outside
// dependency, so every other package can depend on it and on nothing else of
// the project (cmd/imaged wires the implementations together).
package imaged

import (
	"context"
	"time"
)

// Clock tells the time. Services take one so that tests can control time.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock, truncated to microseconds because that is
// what every metadata backend stores.
type SystemClock struct{}

// Now returns the current UTC time truncated to microseconds.
func (SystemClock) Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// ClockFunc adapts a function to Clock.
type ClockFunc func() time.Time

// Now calls f.
func (f ClockFunc) Now() time.Time { return f() }

// Pinger is implemented by dependencies that can report their health.
type Pinger interface {
	Ping(ctx context.Context) error
}
