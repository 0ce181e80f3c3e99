// Package defaults fills settings left unset.
package defaults

// Positive sets *v to def when *v is not positive: an unset (or
// meaningless negative) duration, count or size takes its default.
func Positive[T ~int | ~int64](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
