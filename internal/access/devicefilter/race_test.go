//go:build race

package devicefilter

const raceEnabled = true
