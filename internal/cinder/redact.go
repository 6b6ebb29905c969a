package cinder

import (
	"fmt"
	"sort"
	"strings"
)

// Redacted replaces a credential's value wherever connection data is shown.
const Redacted = "<redacted>"

// sensitiveWords mark a connection data key as a credential when the key,
// lower-cased, contains one of them: auth_password,
// discovery_auth_password, keyring, secret_uuid, any *_key / *key* (cephx
// keys, encryption keys), tokens. Usernames, portals, IQNs, WWNs and LUNs stay
// visible: they are what an operator needs to debug an export, and none of
// them opens a target on its own. Over-matching (e.g. encryption_key_id) is
// accepted: hiding too much in a log line is cheap, leaking a key is not.
var sensitiveWords = []string{"password", "passwd", "secret", "key", "token", "credential", "auth_pass"}

// IsSensitiveKey reports whether a connection data key holds a credential.
func IsSensitiveKey(key string) bool {
	k := strings.ToLower(key)
	for _, w := range sensitiveWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// Redact returns a deep copy of connection data with every credential value
// replaced by Redacted, nested maps and lists included. Keys are kept so a
// log line still shows that, for example, CHAP is configured. A nil or empty
// credential stays as it is: its absence is worth seeing.
func Redact(data map[string]any) map[string]any {
	if data == nil {
		return nil
	}
	out := make(map[string]any, len(data))
	for k, v := range data {
		if IsSensitiveKey(k) && !isEmpty(v) {
			out[k] = Redacted
			continue
		}
		out[k] = redactValue(v)
	}
	return out
}

func redactValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return Redact(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = redactValue(e)
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(t))
		for k, s := range t {
			out[k] = s
		}
		return Redact(out)
	default:
		return v
	}
}

func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	s, ok := v.(string)
	return ok && s == ""
}

// Redacted returns the connection with credentials redacted.
func (c Connection) Redacted() Connection {
	return Connection{DriverVolumeType: c.DriverVolumeType, Data: Redact(c.Data)}
}

// String prints the connection with credentials redacted, so %v and %s of a
// Connection (or of a struct holding one) never show a password.
func (c Connection) String() string {
	r := Redact(c.Data)
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s{", c.DriverVolumeType)
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s:%v", k, r[k])
	}
	b.WriteString("}")
	return b.String()
}

// GoString keeps %#v from printing credentials either.
func (c Connection) GoString() string { return "cinder.Connection" + c.String() }

// MarshalLog is for logr (klog): structured log values of a Connection are
// redacted.
func (c Connection) MarshalLog() any {
	return map[string]any{"driverVolumeType": c.DriverVolumeType, "data": Redact(c.Data)}
}

// String prints the export with its connection redacted.
func (e Export) String() string {
	return fmt.Sprintf("%s export %s: %s", e.Method, e.ID, e.Connection.String())
}

// GoString keeps %#v of an Export from printing credentials.
func (e Export) GoString() string { return "cinder.Export{" + e.String() + "}" }

// MarshalLog is for logr (klog).
func (e Export) MarshalLog() any {
	return map[string]any{"method": string(e.Method), "id": e.ID, "connection": e.Connection.MarshalLog()}
}
