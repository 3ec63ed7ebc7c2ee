//go:build !race

package managed_test

const raceEnabled = false
