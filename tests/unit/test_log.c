/*
 * log.c: the line format that the README's grep one-liners and every
 * integration test rely on: one JSON object per line on stdout, the keys in
 * a fixed order, ": " between key and value and ", " between members.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "testing.h"

/*
 * Runs log_write(level, ctx, msg, fields) with stdout sent to a temporary
 * file and returns what it wrote: a malloc'd string the caller frees.
 */
static char *capture(log_level level, const log_ctx *ctx, const char *msg, cJSON *fields)
{
    FILE *tmp = tmpfile();
    int saved = dup(STDOUT_FILENO);
    char *text = NULL;
    long len;

    if (tmp == NULL || saved < 0) {
        testing_fail(__FILE__, __LINE__, "cannot redirect stdout");
        cJSON_Delete(fields);
        goto done;
    }
    fflush(stdout);
    dup2(fileno(tmp), STDOUT_FILENO);
    log_write(level, ctx, msg, fields);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    len = ftell(tmp);
    text = calloc(1, (size_t)(len > 0 ? len : 0) + 1);
    rewind(tmp);
    if (text != NULL && len > 0 && fread(text, 1, (size_t)len, tmp) != (size_t)len)
        text[0] = '\0';
done:
    if (saved >= 0)
        close(saved);
    if (tmp != NULL)
        fclose(tmp);
    return text;
}

static int count_char(const char *s, char c)
{
    int n = 0;

    for (; *s; s++)
        n += *s == c;
    return n;
}

static void test_full_line(void)
{
    log_ctx ctx = {"0af7651916cd43dd8448eb211c80319c", "ev-1", "US1", "2026-11-24"};
    cJSON *fields = cJSON_CreateObject();
    char *line, *rest;

    cJSON_AddStringToObject(fields, "source", "US1/input.csv");
    cJSON_AddNumberToObject(fields, "rows_in", 3);
    cJSON_AddItemToObject(fields, "event", cJSON_CreateObject());
    cJSON_AddBoolToObject(cJSON_GetObjectItem(fields, "event"), "permanent", 0);
    line = capture(LOG_LEVEL_INFO, &ctx, "file ready", fields);
    CHECK(line != NULL);
    if (line == NULL)
        return;
    /* One line, ending in a newline. */
    CHECK_EQ_INT(count_char(line, '\n'), 1);
    CHECK(line[strlen(line) - 1] == '\n');
    /* ts first, in RFC 3339 UTC with milliseconds. */
    CHECK(strncmp(line, "{\"ts\": \"", 8) == 0);
    CHECK(strlen(line) > 32 && line[8 + 10] == 'T' && line[8 + 23] == 'Z' && line[8 + 24] == '"');
    rest = strstr(line, "\", \"level\"");
    CHECK(rest != NULL);
    /* Then the fixed keys in order, and the caller's fields after them. */
    CHECK_EQ_STR(rest,
                 "\", \"level\": \"info\", \"worker\": \"test_log\", \"msg\": \"file ready\", "
                 "\"trace_id\": \"0af7651916cd43dd8448eb211c80319c\", \"event_id\": "
                 "\"ev-1\", \"client_id\": \"US1\", \"order_date\": \"2026-11-24\", "
                 "\"source\": \"US1/input.csv\", \"rows_in\": 3, \"event\": "
                 "{\"permanent\": false}}\n");
    /* The README's one-liners: grep -F '"trace_id": "<id>"' and
     * grep '"order_date": "<date>"' find the line. */
    CHECK(strstr(line, "\"trace_id\": \"0af7651916cd43dd8448eb211c80319c\"") != NULL);
    CHECK(strstr(line, "\"order_date\": \"2026-11-24\"") != NULL);
    free(line);
}

static void test_unknown_ids(void)
{
    log_ctx ctx = {NULL, "", NULL, NULL};
    char *line = capture(LOG_LEVEL_WARN, &ctx, "no ids", NULL);

    CHECK(line != NULL);
    if (line == NULL)
        return;
    /* trace_id and event_id are always there (null when unknown); client_id
     * and order_date only when known. */
    CHECK(strstr(line, "\"level\": \"warn\"") != NULL);
    CHECK(strstr(line, "\"trace_id\": null, \"event_id\": null}") != NULL);
    CHECK(strstr(line, "client_id") == NULL);
    CHECK(strstr(line, "order_date") == NULL);
    free(line);
    line = capture(LOG_LEVEL_ERROR, NULL, "no context", NULL);
    CHECK(line != NULL && strstr(line, "\"msg\": \"no context\", \"trace_id\": null") != NULL);
    free(line);
}

static void test_escaping(void)
{
    char *line = capture(LOG_LEVEL_INFO, NULL, "two\nlines \"quoted\" \\ tab\t", NULL);
    cJSON *parsed;

    CHECK(line != NULL);
    if (line == NULL)
        return;
    /* A message with a newline stays on one line, and the line is JSON. */
    CHECK_EQ_INT(count_char(line, '\n'), 1);
    CHECK(strstr(line, "\"msg\": \"two\\nlines \\\"quoted\\\" \\\\ tab\\t\"") != NULL);
    parsed = cJSON_Parse(line);
    CHECK(parsed != NULL);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(parsed, "msg")),
                 "two\nlines \"quoted\" \\ tab\t");
    cJSON_Delete(parsed);
    free(line);
}

static void test_levels(void)
{
    char *line;

    CHECK_EQ_INT(log_set_level("verbose"), -1);
    CHECK_EQ_INT(log_set_level("warn"), 0);
    line = capture(LOG_LEVEL_INFO, NULL, "below the threshold", NULL);
    CHECK_EQ_STR(line, "");
    free(line);
    line = capture(LOG_LEVEL_ERROR, NULL, "above", NULL);
    CHECK(line != NULL && strstr(line, "\"level\": \"error\"") != NULL);
    free(line);
    CHECK_EQ_INT(log_set_level("debug"), 0);
    line = capture(LOG_LEVEL_DEBUG, NULL, "shown", NULL);
    CHECK(line != NULL && strstr(line, "\"level\": \"debug\"") != NULL);
    free(line);
    CHECK_EQ_INT(log_set_level("info"), 0);
}

static void test_json_line(void)
{
    cJSON *item = cJSON_Parse("{\"a\":[1,\"x\",null],\"b\":{\"c\":true},\"d\":\"\\u00e9\"}");
    char *text = log_json_line(item);

    CHECK_EQ_STR(text, "{\"a\": [1, \"x\", null], \"b\": {\"c\": true}, \"d\": \"\xc3\xa9\"}");
    free(text);
    cJSON_Delete(item);
}

int main(void)
{
    log_init("test_log");
    test_full_line();
    test_unknown_ids();
    test_escaping();
    test_levels();
    test_json_line();
    return testing_finish("test_log");
}
