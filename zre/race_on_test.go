//go:build race

package zre

// raceEnabled: the race detector is on (its shadow memory inflates RSS).
const raceEnabled = true
