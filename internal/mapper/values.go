package mapper

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Readers for connection info values. Connection info is decoded JSON, so a
// number is a float64 (encoding/json default) or a json.Number (UseNumber);
// values built in Go may also be ints or typed slices. Error messages name the
// field and the JSON type of the value, never the value itself: the same
// readers serve credential fields.

// jsonType names the JSON type of a decoded value for error messages.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float32, float64, json.Number, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return "number"
	case []any, []string, []int, []float64:
		return "list"
	case map[string]any:
		return "object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// lookup returns data[key], treating JSON null like an absent key.
func lookup(data map[string]any, key string) (any, bool) {
	v, ok := data[key]
	if !ok || v == nil {
		return nil, false
	}
	return v, true
}

// optString returns the string at key, "" when absent.
func optString(transport string, data map[string]any, key string) (string, error) {
	v, ok := lookup(data, key)
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", malformed(transport, key, "must be a string, got %s", jsonType(v))
	}
	return s, nil
}

// reqString returns the non-empty string at key.
func reqString(transport string, data map[string]any, key string) (string, error) {
	s, err := optString(transport, data, key)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", missing(transport, key)
	}
	return s, nil
}

// optBool returns the boolean at key, false when absent.
func optBool(transport string, data map[string]any, key string) (bool, error) {
	v, ok := lookup(data, key)
	if !ok {
		return false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, malformed(transport, key, "must be a boolean, got %s", jsonType(v))
	}
	return b, nil
}

// toInt converts an integral number to int64. Strings are refused: Cinder
// sends LUNs as JSON numbers, and a string means something upstream is wrong.
func toInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case uint:
		return int64(n), n <= math.MaxInt64
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint64:
		return int64(n), n <= math.MaxInt64
	case float32:
		return floatToInt(float64(n))
	case float64:
		return floatToInt(n)
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i, true
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil {
			return 0, false
		}
		return floatToInt(f)
	}
	return 0, false
}

func floatToInt(f float64) (int64, bool) {
	if f != math.Trunc(f) || math.IsInf(f, 0) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

// intValue checks that v is an integral number in [lo, hi]; field names v in
// errors.
func intValue(transport, field string, v any, lo, hi int64) (int64, error) {
	n, ok := toInt(v)
	if !ok {
		if jsonType(v) == "number" {
			return 0, malformed(transport, field, "must be an integer, got a fraction")
		}
		return 0, malformed(transport, field, "must be an integer, got %s", jsonType(v))
	}
	if n < lo || n > hi {
		return 0, malformed(transport, field, "must be between %d and %d, got %d", lo, hi, n)
	}
	return n, nil
}

// optList returns the list at key as []any (nil when absent).
func optList(transport string, data map[string]any, key string) ([]any, error) {
	v, ok := lookup(data, key)
	if !ok {
		return nil, nil
	}
	switch l := v.(type) {
	case []any:
		return l, nil
	case []string:
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out, nil
	case []int:
		out := make([]any, len(l))
		for i, n := range l {
			out[i] = n
		}
		return out, nil
	case []float64:
		out := make([]any, len(l))
		for i, n := range l {
			out[i] = n
		}
		return out, nil
	}
	return nil, malformed(transport, key, "must be a list, got %s", jsonType(v))
}

// optStringList returns the list of strings at key (nil when absent).
func optStringList(transport string, data map[string]any, key string) ([]string, bool, error) {
	l, err := optList(transport, data, key)
	if err != nil || l == nil {
		return nil, false, err
	}
	out := make([]string, len(l))
	for i, v := range l {
		s, ok := v.(string)
		if !ok {
			return nil, true, malformed(transport, fmt.Sprintf("%s[%d]", key, i), "must be a string, got %s", jsonType(v))
		}
		out[i] = s
	}
	return out, true, nil
}

// optIntList returns the list of integers in [lo, hi] at key (nil when absent).
func optIntList(transport string, data map[string]any, key string, lo, hi int64) ([]int64, bool, error) {
	l, err := optList(transport, data, key)
	if err != nil || l == nil {
		return nil, false, err
	}
	out := make([]int64, len(l))
	for i, v := range l {
		n, err := intValue(transport, fmt.Sprintf("%s[%d]", key, i), v, lo, hi)
		if err != nil {
			return nil, true, err
		}
		out[i] = n
	}
	return out, true, nil
}
