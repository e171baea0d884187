package config

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// normalizeKafka rewrites the [kafka] table of one layer in place: nested
// tables become dotted property names (an unquoted bootstrap.servers = "..."
// is a nested table in TOML, but the user meant the property), and librdkafka
// aliases become the supported names. A property given twice in one layer
// with different values is an error.
func normalizeKafka(layer map[string]any) error {
	km, ok := layer["kafka"].(map[string]any)
	if !ok {
		return nil // missing, or not a table: decode reports the latter
	}
	keys := structKeys(reflect.TypeFor[Kafka]())
	out := make(map[string]any, len(km))
	var errs []error
	var flatten func(prefix string, m map[string]any)
	flatten = func(prefix string, m map[string]any) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			v, name := m[k], prefix+k
			if sub, ok := v.(map[string]any); ok && keys[name] == nil {
				flatten(name+".", sub)
				continue
			}
			if _, dup := out[name]; dup {
				errs = append(errs, fmt.Errorf("%s is set twice (as a dotted key and as a quoted key)", joinKey("kafka", name)))
				continue
			}
			out[name] = v
		}
	}
	flatten("", km)
	for _, name := range slices.Sorted(maps.Keys(out)) {
		canon, ok := kafkaAliases[name]
		if !ok {
			continue
		}
		v := out[name]
		if old, set := out[canon]; set {
			a, _ := propertyString(old)
			b, _ := propertyString(v)
			if a != b {
				errs = append(errs, fmt.Errorf("%s (%s) and its alias %s (%s) are both set and differ",
					joinKey("kafka", canon), quoteValue(old), joinKey("kafka", name), quoteValue(v)))
				continue
			}
		}
		out[canon] = v
		delete(out, name)
	}
	layer["kafka"] = out
	return errors.Join(errs...)
}

// decode fills k from the merged [kafka] table and the KAFKA_ variables
// (which override it): miffy's own keys into the fields, every other key
// into Properties as text.
func (k *Kafka) decode(raw any, env map[string]any) []error {
	km := map[string]any{}
	switch raw := raw.(type) {
	case nil:
	case map[string]any:
		maps.Copy(km, raw)
	default:
		return []error{fmt.Errorf("kafka: must be a table, not %s", quoteValue(raw))}
	}
	maps.Copy(km, env)

	keys := structKeys(reflect.TypeFor[Kafka]())
	own := map[string]any{}
	k.Properties = map[string]string{}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(km)) {
		v := km[name]
		if keys[name] != nil {
			own[name] = v
			continue
		}
		s, ok := propertyString(v)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: a property must be a string, number or boolean, not %s",
				joinKey("kafka", name), quoteValue(v)))
			continue
		}
		k.Properties[name] = s
	}
	return append(errs, decode(own, k, "kafka.")...)
}

// propertyString renders a scalar TOML value as a librdkafka property value.
func propertyString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case int:
		return strconv.Itoa(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	}
	return "", false
}

// foldBrokers merges the legacy brokers list into "bootstrap.servers"; see
// Config.fold for which wins. Brokers is cleared afterwards.
func (k *Kafka) foldBrokers(ls layers) error {
	defer func() { k.Brokers = nil }()
	var list []string
	for _, b := range k.Brokers {
		if b = strings.TrimSpace(b); b != "" {
			list = append(list, b)
		}
	}
	if len(list) == 0 {
		return nil
	}
	joined := strings.Join(list, ",")
	br, bs := ls.top("kafka", "brokers"), ls.top("kafka", "bootstrap.servers")
	switch {
	case br < bs:
	case br > bs:
		k.Properties["bootstrap.servers"] = joined
	default:
		if cur, ok := k.Properties["bootstrap.servers"]; ok && normalizeServers(cur) != joined {
			return fmt.Errorf("kafka.brokers (%q) and kafka.\"bootstrap.servers\" (%q) are both set and differ; set only \"bootstrap.servers\"",
				joined, cur)
		}
		k.Properties["bootstrap.servers"] = joined
	}
	return nil
}

// normalizeServers trims the items of a comma-separated server list.
func normalizeServers(s string) string {
	var list []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			list = append(list, item)
		}
	}
	return strings.Join(list, ",")
}

// librdkafkaProperties are librdkafka's client properties (its
// CONFIGURATION.md) that miffy does not support. A KAFKA_ variable that
// names one is read (and rejected, like the same key in the file) rather
// than taken for another tool's variable.
var librdkafkaProperties = []string{
	"allow.auto.create.topics", "api.version.fallback.ms", "api.version.request",
	"api.version.request.timeout.ms", "auto.commit.interval.ms", "auto.offset.reset",
	"batch.num.messages", "broker.address.family", "broker.address.ttl",
	"broker.version.fallback", "builtin.features", "check.crcs", "client.dns.lookup",
	"client.rack", "compression.level", "connections.max.idle.ms",
	"coordinator.query.interval.ms", "debug", "delivery.report.only.error",
	"delivery.timeout.ms", "enable.auto.commit", "enable.auto.offset.store",
	"enable.gapless.guarantee", "enable.partition.eof", "enable.random.seed",
	"enable.sasl.oauthbearer.unsecure.jwt", "enable.ssl.certificate.verification",
	"fetch.error.backoff.ms", "fetch.max.bytes", "fetch.message.max.bytes",
	"fetch.min.bytes", "fetch.wait.max.ms", "group.id", "group.instance.id",
	"group.protocol.type", "heartbeat.interval.ms", "isolation.level",
	"log.connection.close", "log.queue", "log.thread.name", "max.in.flight",
	"max.in.flight.requests.per.connection", "max.partition.fetch.bytes",
	"max.poll.interval.ms", "message.copy.max.bytes", "message.send.max.retries",
	"message.timeout.ms", "metadata.max.age.ms", "metadata.recovery.strategy",
	"partition.assignment.strategy", "partitioner", "plugin.library.paths",
	"queue.buffering.backpressure.threshold", "queue.buffering.max.kbytes",
	"queue.buffering.max.messages", "queued.max.messages.kbytes", "queued.min.messages",
	"receive.message.max.bytes", "reconnect.backoff.jitter.ms", "reconnect.backoff.max.ms",
	"reconnect.backoff.ms", "retries", "retry.backoff.max.ms",
	"sasl.kerberos.keytab", "sasl.kerberos.kinit.cmd", "sasl.kerberos.min.time.before.relogin",
	"sasl.kerberos.principal", "sasl.kerberos.service.name", "sasl.oauthbearer.client.id",
	"sasl.oauthbearer.client.secret", "sasl.oauthbearer.config", "sasl.oauthbearer.extensions",
	"sasl.oauthbearer.method", "sasl.oauthbearer.scope", "sasl.oauthbearer.token.endpoint.url",
	"session.timeout.ms", "socket.blocking.max.ms", "socket.connection.setup.timeout.ms",
	"socket.keepalive.enable", "socket.max.fails", "socket.nagle.disable",
	"socket.receive.buffer.bytes", "socket.send.buffer.bytes", "socket.timeout.ms",
	"ssl.ca.certificate.stores", "ssl.ca.pem", "ssl.certificate.pem", "ssl.cipher.suites",
	"ssl.crl.location", "ssl.curves.list", "ssl.engine.id", "ssl.engine.location",
	"ssl.key.pem", "ssl.keystore.location", "ssl.keystore.password", "ssl.providers",
	"ssl.sigalgs.list", "statistics.interval.ms", "sticky.partitioning.linger.ms",
	"topic.metadata.propagation.max.ms", "topic.metadata.refresh.fast.interval.ms",
	"topic.metadata.refresh.interval.ms", "topic.metadata.refresh.sparse",
	"transaction.timeout.ms", "transactional.id",
}

// kafkaProperties reports the [kafka] properties miffy does not support,
// with the nearest supported one as a hint.
func (v *validator) kafkaProperties(props map[string]string) {
	for _, name := range slices.Sorted(maps.Keys(props)) {
		if slices.Contains(kafkaProperties, name) {
			continue
		}
		hint := ""
		if k := nearest(name, kafkaProperties); k != "" {
			hint = fmt.Sprintf("; did you mean %q?", k)
		}
		v.errorf("%s: not supported by miffy%s", joinKey("kafka", name), hint)
	}
}
