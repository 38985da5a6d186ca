//go:build race

package httpd

// raceDetector: built with -race, whose shadow memory multiplies the
// server's RSS, so the abuse tests leave their memory bound out.
const raceDetector = true
