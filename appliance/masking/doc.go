// Package masking masks sensitive values in response bodies before they
// reach the planner (and before they are recorded). A connection's rules
// compile into a [Masker]; [Masker.Wrap] turns one response body into a
// [Reader] of the masked body, as it streams.
//
// # Rules
//
//   - json_path: the JSONPath subset of model.CheckJSONPath ($.a.b,
//     $..name, .*, [*], [N], ['name']) replaces whole values: strings,
//     numbers, literals, objects and arrays. Keys are compared after
//     decoding escapes ("\u0070assword" is "password"), and every member
//     of an object with duplicate keys is visited, so every duplicate is
//     masked.
//   - regex (RE2) and detector rules run over text: every JSON string
//     value, key and number (after decoding escapes; a number that
//     matches becomes a string), every server-sent event's data and
//     field values, and text bodies. Detectors: payment_card (13-19
//     digits, spaces or dashes between groups, first digit 2-6, Luhn),
//     aws_access_key (AKIA, ASIA, ABIA, ACCA, A3T? + 16), pem_private_key
//     (the whole block; a BEGIN without END masks the key material after
//     it), jwt (three base64url segments, five for JWE, whose header
//     decodes to JSON with "alg"), email, us_ssn (AAA-GG-SSSS or AAA GG
//     SSSS, not area 000, 666 or 9xx, group 00 or serial 0000), iban
//     (registry country, its length, mod-97).
//   - Overlapping matches merge into one masked range, replaced as the
//     earliest of their rules says.
//   - Replacements: redact gives "***"; partial gives "***" and the last
//     four characters of values of at least eight characters ("***" for
//     shorter ones, which four characters would mostly reveal); hash
//     gives "hash:" and 32 hex digits of HMAC-SHA256 under the
//     appliance's key (for a JSON string, of its decoded text, so a
//     value hashes the same wherever it appears; for a container, of its
//     canonical compact form).
//
// # Formats (by Content-Type)
//
//   - JSON (application/json, */*+json) is masked by a streaming
//     tokenizer that rewrites values as they pass: memory is bounded by
//     the nesting depth (Limits.MaxDepth), the longest key or number
//     (Limits.MaxTokenBytes) and the text window; string values of any
//     length stream through. Whitespace, key order and everything
//     unmatched are kept byte for byte, except that when a connection has
//     regex or detector rules every string and key is re-escaped
//     minimally (the rules ran on its decoded text).
//   - JSON lines (application/x-ndjson, application/jsonl, json-seq...):
//     the same tokenizer over a sequence of values, passed on as they
//     come.
//   - Server-sent events (text/event-stream): one event is held (up to
//     Limits.MaxEventBytes) and passed on masked when its blank line
//     arrives. Data that is JSON is masked as JSON; other data as text,
//     except that with json_path rules, data that is not JSON but
//     contains '{' or '"' is refused (a malformed object could carry a
//     path's value past the tokenizer).
//   - Text (text/*, XML, JavaScript, YAML, forms, no Content-Type): the
//     rules run over a sliding window; the last Limits.Window bytes are
//     held back until more text comes, so that a match spanning reads is
//     still found whole (a match longer than the window may be cut).
//     Text is held back by up to twice the window: a text stream is
//     delayed by that much; streams meant to flow should use SSE or JSON
//     lines.
//
// # Encodings
//
// gzip (x-gzip), deflate (zlib or raw) and br bodies are decoded as they
// stream, bounded by Limits.MaxDecodedBytes and by Limits.MaxRatio
// decoded bytes per encoded byte past Limits.RatioGrace, and sent
// identity-encoded: Wrap removes Content-Encoding and Content-Length.
// AcceptEncoding lists what to ask executors for. A br body may need a
// window of up to 16 MiB to decode.
//
// # Failure modes: fail closed
//
// A response that cannot be masked safely is never passed on unmasked.
// Wrap refuses (ErrUnmaskable) up front: several or unparsable
// Content-Type fields, a charset that is not ASCII-compatible (UTF-16
// would hide text from the rules), binary media types (images,
// archives, application/octet-stream, protobuf, multipart: what is
// inside cannot be masked, so a connection that must serve them needs
// no masking rules), an unknown or stacked Content-Encoding. While
// reading, the Reader fails (ErrUnmaskable) on malformed JSON (including
// data after the single value of application/json), a key, number or
// event over its bound, nesting over the depth, a decoding error or
// limit, and a text body whose first bytes are binary. Output not yet
// read when it fails is dropped. [Reader.Prefetch] lets the caller find
// such failures before the response starts (and answer 502); a failure
// later in a stream must abort the response (reset the connection or
// stream), never end it cleanly.
package masking
