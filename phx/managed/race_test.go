//go:build race

package managed_test

// raceEnabled: the race detector slows phx and phxtest about tenfold.
const raceEnabled = true
