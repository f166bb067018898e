/* mafalda-ctl's helpers (controller/ctl/ctl.h): the --controller list, host:port checks,
 * short ids, durations, worker load as placement sees it (with hostile report values),
 * load lookups and the text table (alignment, no trailing blanks). The commands
 * themselves run against real processes in tests/integration/ctl_cli.c and ctl_cluster.c. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "controller/ctl/ctl.h"

static void test_parse_controllers(void **state) {
  (void)state;
  static const struct {
    const char *text;
    size_t n; /* 0 = invalid */
    const char *first_url, *last_addr;
  } cases[] = {
      {"127.0.0.1:7200", 1, "tcp://127.0.0.1:7200", "127.0.0.1:7200"},
      {"tcp://h1:1,h2:65535", 2, "tcp://h1:1", "h2:65535"},
      {"a:1,b:2,c:3", 3, "tcp://a:1", "c:3"},
      {"[::1]:7200", 1, "tcp://[::1]:7200", "[::1]:7200"},
      {"", 0, NULL, NULL},
      {"nohost", 0, NULL, NULL},
      {":7200", 0, NULL, NULL},
      {"h:", 0, NULL, NULL},
      {"h:0", 0, NULL, NULL},
      {"h:65536", 0, NULL, NULL},
      {"h:12x", 0, NULL, NULL},
      {"h:1,", 0, NULL, NULL},
      {",h:1", 0, NULL, NULL},
      {"h:1,,h:2", 0, NULL, NULL},
      {"h h:1", 0, NULL, NULL},
      {"h/x:1", 0, NULL, NULL},
      {"a:1,b:1,c:1,d:1,e:1,f:1,g:1,h:1,i:1,j:1,k:1,l:1,m:1,n:1,o:1,p:1", 16, "tcp://a:1", "p:1"},
      {"a:1,b:1,c:1,d:1,e:1,f:1,g:1,h:1,i:1,j:1,k:1,l:1,m:1,n:1,o:1,p:1,q:1", 0, NULL, NULL},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    bool ok = mf_ctl_parse_controllers(cases[i].text);
    if (!cases[i].n) {
      assert_false(ok);
      continue;
    }
    assert_true(ok);
    assert_int_equal(mf_ctl_n_urls, cases[i].n);
    assert_string_equal(mf_ctl_urls[0], cases[i].first_url);
    assert_string_equal(mf_ctl_addrs[cases[i].n - 1], cases[i].last_addr);
  }
  char long_item[200];
  memset(long_item, 'a', sizeof(long_item));
  snprintf(long_item + 150, 50, ":1");
  assert_false(mf_ctl_parse_controllers(long_item));
}

static void test_short_id_and_duration(void **state) {
  (void)state;
  char b[32];
  assert_string_equal(mf_ctl_short_id("n1", b, sizeof(b)), "n1");
  assert_string_equal(mf_ctl_short_id("abcdefghijkl", b, sizeof(b)), "abcdefghijkl");
  assert_string_equal(mf_ctl_short_id("0f3c2a9e-1111-4aaa-8bbb-000000000001", b, sizeof(b)),
                      "0f3c2a9e");
  assert_string_equal(mf_ctl_short_id("", b, sizeof(b)), "");
  static const struct {
    uint64_t ms;
    const char *text;
  } d[] = {{0, "-"},           {999, "0s"},          {45000, "45s"},
           {60000, "1m00s"},   {723000, "12m03s"},   {3723000, "1h02m"},
           {86399000, "23h59m"}, {86400000, "1d00h"}, {277200000, "3d05h"}};
  for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
    assert_string_equal(mf_ctl_duration(d[i].ms, b, sizeof(b)), d[i].text);
}

static void test_load_percent(void **state) {
  (void)state;
  Mafalda__Controller__Worker w0 = MAFALDA__CONTROLLER__WORKER__INIT, w1 = w0, *wp[2] = {&w0, &w1};
  w0.index = 0; /* capacity 0: placement's default, 200k packets/s */
  w1.index = 1;
  w1.capacity_pps = 1000;
  Mafalda__Controller__Node n = MAFALDA__CONTROLLER__NODE__INIT;
  n.n_workers = 2;
  n.workers = wp;
  static const struct {
    uint32_t index;
    float cpu;
    uint64_t in, out;
    double want;
  } cases[] = {
      {0, 0.25f, 1000, 3000, 25.0},     /* cpu dominates */
      {0, 0.0f, 150000, 100000, 125.0}, /* packets dominate, above capacity */
      {1, 0.1f, 500, 250, 75.0},        /* the worker's own capacity */
      {1, NAN, 100, 0, 10.0},           /* a NaN cpu is ignored */
      {1, -3.0f, 0, 0, 0.0},            /* so is a negative one */
      {1, INFINITY, 0, 0, 0.0},
      {7, 0.5f, 0, 0, 50.0}, /* unregistered worker index: default capacity */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    Mafalda__Cluster__WorkerLoad wl = MAFALDA__CLUSTER__WORKER_LOAD__INIT;
    wl.index = cases[i].index;
    wl.cpu = cases[i].cpu;
    wl.packets_in_per_sec = cases[i].in;
    wl.packets_out_per_sec = cases[i].out;
    double got = mf_ctl_worker_load_percent(&n, cases[i].index, &wl);
    assert_true(fabs(got - cases[i].want) < 1e-6);
  }
}

static void test_find_load(void **state) {
  (void)state;
  Mafalda__Cluster__WorkerLoad a = MAFALDA__CLUSTER__WORKER_LOAD__INIT, b = a, *wp[2] = {&a, &b};
  a.index = 3;
  b.index = 1;
  Mafalda__Cluster__LoadReport r1 = MAFALDA__CLUSTER__LOAD_REPORT__INIT, r2 = r1, r3 = r1;
  r1.node_id = (char *)"n1";
  r1.n_workers = 2;
  r1.workers = wp;
  r2.node_id = (char *)"n2";
  r3.node_id = NULL; /* a malformed entry must not crash the lookup */
  Mafalda__Cluster__LoadReport *loads[3] = {&r3, &r1, &r2};
  Mafalda__Controller__StateResponse s = MAFALDA__CONTROLLER__STATE_RESPONSE__INIT;
  s.n_loads = 3;
  s.loads = loads;
  assert_ptr_equal(mf_ctl_find_load(&s, "n1"), &r1);
  assert_ptr_equal(mf_ctl_find_load(&s, "n2"), &r2);
  assert_null(mf_ctl_find_load(&s, "n3"));
  assert_null(mf_ctl_find_load(&s, "n"));
  assert_ptr_equal(mf_ctl_find_worker_load(&r1, 1), &b);
  assert_ptr_equal(mf_ctl_find_worker_load(&r1, 3), &a);
  assert_null(mf_ctl_find_worker_load(&r1, 0));
  assert_null(mf_ctl_find_worker_load(&r2, 0));
  assert_null(mf_ctl_find_worker_load(NULL, 0));
}

/* Runs the table printer with stdout sent to a temporary file; returns what it printed. */
static char *print_table(mf_ctl_table_t *t, const char *indent) {
  fflush(stdout);
  int saved = dup(1);
  FILE *tmp = tmpfile();
  assert_non_null(tmp);
  dup2(fileno(tmp), 1);
  mf_ctl_table_print(t, indent);
  fflush(stdout);
  dup2(saved, 1);
  close(saved);
  static char buf[1024];
  rewind(tmp);
  size_t n = fread(buf, 1, sizeof(buf) - 1, tmp);
  buf[n] = '\0';
  fclose(tmp);
  return buf;
}

static void test_table(void **state) {
  (void)state;
  mf_ctl_table_t t = {.cols = 4};
  mf_ctl_table_align(&t, "<><>");
  mf_ctl_table_row(&t, (const char *const[]){"ID", "N", "ROLE", "LAG"});
  mf_ctl_table_row(&t, (const char *const[]){"1", "12", "leader", "0"});
  mf_ctl_table_row(&t, (const char *const[]){"long-id", "3", "unreachable", ""});
  mf_ctl_table_row(&t, (const char *const[]){"x", NULL, "", ""});
  assert_string_equal(print_table(&t, "  "),
                      "  ID        N  ROLE         LAG\n"
                      "  1        12  leader         0\n"
                      "  long-id   3  unreachable\n"
                      "  x\n");
  assert_null(t.cells);
  mf_ctl_table_t empty = {.cols = 2};
  mf_ctl_table_row(&empty, (const char *const[]){"A", "B"});
  assert_string_equal(print_table(&empty, NULL), "A  B\n");
  mf_ctl_table_t unused = {.cols = 3};
  mf_ctl_table_row(&unused, (const char *const[]){"A", "B", "C"});
  mf_ctl_table_free(&unused);
  assert_null(unused.cells);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_controllers), cmocka_unit_test(test_short_id_and_duration),
      cmocka_unit_test(test_load_percent),      cmocka_unit_test(test_find_load),
      cmocka_unit_test(test_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
