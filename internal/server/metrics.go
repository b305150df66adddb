package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	connections                                           prometheus.Gauge
	received, delivered, acked, blocked, expired, bundles prometheus.Counter
	registrations, blobsDeleted                           prometheus.Counter
	sendLatency, deliveryLatency                          prometheus.Histogram
}

var latencyBuckets = []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func newMetrics(reg prometheus.Registerer, s *Server) *metrics {
	m := &metrics{
		connections:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "hushd_websocket_connections", Help: "Devices connected over WebSocket."}),
		received:      prometheus.NewCounter(prometheus.CounterOpts{Name: "hushd_messages_received_total", Help: "Messages accepted and stored."}),
		delivered:     prometheus.NewCounter(prometheus.CounterOpts{Name: "hushd_messages_delivered_total", Help: "Messages written to a recipient's connection (redeliveries included)."}),
		acked:         prometheus.NewCounter(prometheus.CounterOpts{Name: "hushd_messages_acked_total", Help: "Message acknowledgements received."}),
		blocked:       prometheus.NewCounter(prometheus.CounterOpts{Name: "hushd_messages_blocked_total", Help: "Messages dropped because the recipient blocks the sender."}),
		expired:       prometheus.NewCounter(prometheus.CounterOpts{Name: "hushd_messages_expired_total", Help: "Undelivered messages deleted on expiry."}),
		bundles:       prometheus.NewCounter(prometheus.CounterOpts{Name: "hushd_prekey_bundles_total", Help: "Prekey bundles handed out."}),
		registrations: prometheus.NewCounter(prometheus.CounterOpts{Name: "hushd_registrations_total", Help: "Accounts registered."}),
		blobsDeleted:  prometheus.NewCounter(prometheus.CounterOpts{Name: "hushd_blobs_deleted_total", Help: "Blobs whose bytes were deleted (confirmed by every recipient, discarded or expired)."}),
		sendLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hushd_send_seconds",
			Help: "From a send's arrival to its durable commit.", Buckets: latencyBuckets}),
		deliveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hushd_delivery_seconds",
			Help: "From a message's acceptance to its write to the recipient.", Buckets: latencyBuckets}),
	}
	if reg != nil {
		reg.MustRegister(m.connections, m.received, m.delivered, m.acked, m.blocked, m.expired, m.bundles, m.registrations, m.blobsDeleted,
			m.sendLatency, m.deliveryLatency,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hushd_queue_depth", Help: "Messages queued for all devices."},
				func() float64 {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					n, err := s.st.QueueDepth(ctx)
					if err != nil {
						return -1
					}
					return float64(n)
				}))
	}
	return m
}
