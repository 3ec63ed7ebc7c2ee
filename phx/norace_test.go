//go:build !race

package phx_test

const raceOn = false
