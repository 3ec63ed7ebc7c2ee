//go:build race

package phx_test

// raceOn: the race detector is on. Its sync.Pool drops a quarter of what
// it is given on purpose, so buffer reuse is not counted under it.
const raceOn = true
