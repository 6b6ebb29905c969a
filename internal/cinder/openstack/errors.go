package openstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// Outcomes recorded in metrics, one per error kind.
const (
	outcomeSuccess     = "success"
	outcomeNotFound    = "not_found"
	outcomeQuota       = "quota"
	outcomeConflict    = "conflict"
	outcomeInvalid     = "invalid"
	outcomeUnavailable = "unavailable"
	outcomeError       = "error"
)

// maxMessage bounds the Cinder message kept in an error.
const maxMessage = 512

// classify is the ONE place where gophercloud, HTTP and network errors become
// the project's sentinels. It returns the sentinel, Cinder's message (when it
// sent one) and the context error, if a context ended. Nothing of net/http
// (URLs, headers, bodies other than Cinder's message) is kept.
func classify(err error) (kind error, message string, ctxErr error) {
	if err == nil {
		return nil, "", nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		ce := context.Canceled
		if errors.Is(err, context.DeadlineExceeded) {
			ce = context.DeadlineExceeded
		}
		return cinder.ErrUnavailable, "request interrupted", ce
	}
	var reauth *gophercloud.ErrUnableToReauthenticate
	if errors.As(err, &reauth) {
		k, m, c := classify(reauth.ErrReauth)
		if errors.Is(k, cinder.ErrUnavailable) {
			return k, "re-authentication failed: " + m, c
		}
		return cinder.ErrUnauthorized, "token expired and re-authentication failed: " + m, c
	}
	if code, body, ok := responseCode(err); ok {
		return kindForStatus(code), cinderMessage(body), nil
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return cinder.ErrUnavailable, "cannot reach cinder: " + opErr.Error(), nil
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return cinder.ErrUnavailable, "cinder did not answer in time", nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return cinder.ErrUnavailable, "connection closed by cinder", nil
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		// TLS failures, proxies, DNS: keep the innermost cause, not the URL.
		return cinder.ErrUnavailable, "cannot reach cinder: " + innermost(urlErr.Err).Error(), nil
	}
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &syntaxErr) || errors.As(err, &typeErr) {
		return cinder.ErrUnavailable, "malformed response from cinder: " + err.Error(), nil
	}
	var missing gophercloud.ErrMissingInput
	var invalid gophercloud.ErrInvalidInput
	if errors.As(err, &missing) || errors.As(err, &invalid) {
		return cinder.ErrInvalid, err.Error(), nil
	}
	var noEndpoint *gophercloud.ErrEndpointNotFound
	var noService *gophercloud.ErrServiceNotFound
	if errors.As(err, &noEndpoint) || errors.As(err, &noService) {
		return cinder.ErrInvalid, "no block-storage endpoint in the service catalog for this region and interface", nil
	}
	return cinder.ErrUnavailable, innermost(err).Error(), nil
}

func innermost(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// responseCode finds an HTTP status answer in a gophercloud error (value or
// pointer form, possibly wrapped by the re-authentication errors).
func responseCode(err error) (int, []byte, bool) {
	var v gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &v) {
		return v.Actual, v.Body, true
	}
	var p *gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &p) && p != nil {
		return p.Actual, p.Body, true
	}
	return 0, nil, false
}

func kindForStatus(code int) error {
	switch {
	case code == http.StatusNotFound:
		return cinder.ErrNotFound
	case code == http.StatusRequestEntityTooLarge:
		return cinder.ErrQuotaExceeded
	case code == http.StatusConflict:
		return cinder.ErrConflict
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return cinder.ErrUnauthorized
	case code == http.StatusTooManyRequests || code >= 500:
		return cinder.ErrUnavailable
	default:
		return cinder.ErrInvalid
	}
}

// cinderMessage extracts Cinder's message from an error body:
// {"badRequest":{"message":"...","code":400}}, {"overLimit":{...}},
// {"itemNotFound":{...}}, {"error":{"message":...}} or {"message":...}.
// Non-JSON bodies (HTML error pages of a proxy) give "".
func cinderMessage(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return ""
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return ""
	}
	if m, ok := top["message"]; ok {
		var s string
		if json.Unmarshal(m, &s) == nil {
			return clip(s)
		}
	}
	for _, raw := range top {
		var inner struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &inner) == nil && inner.Message != "" {
			return clip(inner.Message)
		}
	}
	return ""
}

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func outcomeOf(kind error) string {
	switch {
	case kind == nil:
		return outcomeSuccess
	case errors.Is(kind, cinder.ErrNotFound):
		return outcomeNotFound
	case errors.Is(kind, cinder.ErrQuotaExceeded):
		return outcomeQuota
	case errors.Is(kind, cinder.ErrConflict):
		return outcomeConflict
	case errors.Is(kind, cinder.ErrInvalid):
		return outcomeInvalid
	case errors.Is(kind, cinder.ErrUnavailable):
		return outcomeUnavailable
	default:
		return outcomeError
	}
}

// wrap turns a raw error into a *cinder.Error for op on volume.
func wrap(op, volume string, err error) error {
	if err == nil {
		return nil
	}
	kind, msg, ctxErr := classify(err)
	return &cinder.Error{Op: op, Volume: volume, Kind: kind, Message: msg, Err: ctxErr}
}
