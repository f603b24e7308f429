package wellknown

import (
	"math"
	"strconv"
	"strings"
)

// AllowedPriceValues are the values a node's price label accepts.
const AllowedPriceValues = `a decimal number of dollars per hour, 0 or more (e.g. "0.0416")`

// ParsePrice reads the value of the price label key on a node: a finite decimal number, 0 or
// more, spaces around it ignored. Anything else is an *InvalidValueError: the node is priced
// as if it had no label.
func ParsePrice(key, v string) (float64, error) {
	s := strings.TrimSpace(v)
	p, err := strconv.ParseFloat(s, 64)
	// ParseFloat also takes hexadecimal ("0x1p-3"), "Inf" and "NaN": not what a price looks like.
	decimal := strings.IndexFunc(s, func(r rune) bool { return !strings.ContainsRune("0123456789.eE+-", r) }) < 0
	if err != nil || !decimal || p < 0 || math.IsInf(p, 0) || math.IsNaN(p) {
		return 0, &InvalidValueError{Kind: "label", Key: key, Value: v, Allowed: AllowedPriceValues,
			Reading: "the node is priced from the price table, as if it had no label (unknown without a table entry)"}
	}
	return p, nil
}
