/*
 * mock_kafka.c — walrev-mock-kafka: runs librdkafka's Kafka protocol mock
 * cluster (a real Kafka wire endpoint, in memory) on loopback until SIGTERM
 * or SIGINT, for the demo and the end-to-end tests. Prints the bootstrap
 * servers on stdout (first line), then waits. SIGUSR1 takes every broker
 * down (connections cut, new ones refused; the data stays), SIGUSR2 brings
 * them back: a broker outage for fault tests. Not a broker for production.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static volatile sig_atomic_t want_down;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        want_down = 1;
    else if (sig == SIGUSR2)
        want_down = 0;
    else
        stop = 1;
}

int main(int argc, char **argv)
{
    int brokers = argc > 1 ? atoi(argv[1]) : 1;
    if (brokers < 1 || brokers > 9) {
        fprintf(stderr, "usage: walrev-mock-kafka [BROKERS 1-9]\n");
        return 2;
    }
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* The mock cluster lives inside a client handle; it never connects anywhere. */
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "walrev-mock-kafka: %s\n", errstr);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "walrev-mock-kafka: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, "walrev-mock-kafka: could not start the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    int down = 0;
    while (!stop) {
        usleep(50000); /* polled: a signal between the test and a pause() would be missed */
        if (want_down == down) continue;
        down = want_down;
        for (int i = 1; i <= brokers; i++) {
            if (down)
                rd_kafka_mock_broker_set_down(mc, i);
            else
                rd_kafka_mock_broker_set_up(mc, i);
        }
        fprintf(stderr, "walrev-mock-kafka: brokers %s\n", down ? "down" : "up");
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
