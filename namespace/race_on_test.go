//go:build race

package namespace

// raceEnabled scales the long tests down under the race detector, which
// makes them several times slower.
const raceEnabled = true
