%% The Erlang distribution peer of the remote rows: `rpc:call/4` from this
%% node to another on the same machine (both `-sname`, epmd on loopback),
%% the same echo of a small map as WTD's signed call.
%% `serve([Peer])` connects to Peer, warms up, prints "ready", then reads
%% "rpc N" lines from stdin and answers each with one line of JSON:
%% {"c1":calls/s,"c64":calls/s,"p50":ms,"p99":ms} for N sequential calls
%% and N more from 64 spawned callers. It halts when stdin ends.
-module(wtd_bench_rpc).
-export([serve/1, echo/1]).

echo(X) -> X.

payload() -> #{n => 42, text => <<"hello">>}.

serve([Peer]) ->
    B = list_to_atom(Peer),
    connect(B, 200),
    [call(B) || _ <- lists:seq(1, 200)],
    io:format("ready~n"),
    loop(B).

%% The peer node starts beside this one: up to 200 tries, 50 ms apart.
connect(B, 0) ->
    io:format("{\"error\":\"cannot reach ~s\"}~n", [B]),
    halt(1);
connect(B, Tries) ->
    case net_adm:ping(B) of
        pong ->
            ok;
        pang ->
            timer:sleep(50),
            connect(B, Tries - 1)
    end.

loop(B) ->
    case io:get_line('') of
        eof ->
            halt(0);
        {error, _} ->
            halt(1);
        Line ->
            ["rpc", Arg] = string:lexemes(string:trim(Line), " "),
            N = list_to_integer(Arg),
            {C1, P50, P99} = sequential(B, N),
            C64 = concurrent(B, N, 64),
            io:format("{\"c1\":~p,\"c64\":~p,\"p50\":~p,\"p99\":~p}~n", [C1, C64, P50, P99]),
            loop(B)
    end.

now_ns() -> erlang:monotonic_time(nanosecond).

call(B) ->
    P = payload(),
    P = rpc:call(B, ?MODULE, echo, [P]).

%% calls/s, and the median and 99th percentile latency in ms
sequential(B, N) ->
    T0 = now_ns(),
    Latencies = lists:sort([timed(B) || _ <- lists:seq(1, N)]),
    Rate = N / ((now_ns() - T0) / 1.0e9),
    {Rate, percentile(Latencies, 50), percentile(Latencies, 99)}.

timed(B) ->
    T0 = now_ns(),
    call(B),
    (now_ns() - T0) / 1.0e6.

%% as bench/remote.ts: the element at floor(P% of the length), zero-based
percentile(Sorted, P) ->
    Len = length(Sorted),
    lists:nth(min(Len - 1, trunc(P / 100 * Len)) + 1, Sorted).

%% calls/s of N calls made by Callers processes at once
concurrent(B, N, Callers) ->
    Next = atomics:new(1, []),
    Self = self(),
    T0 = now_ns(),
    Pids = [spawn_link(fun() -> caller(B, Next, N), Self ! {done, self()} end) || _ <- lists:seq(1, Callers)],
    [
        receive
            {done, Pid} -> ok
        end
     || Pid <- Pids
    ],
    N / ((now_ns() - T0) / 1.0e9).

caller(B, Next, N) ->
    case atomics:add_get(Next, 1, 1) =< N of
        true ->
            call(B),
            caller(B, Next, N);
        false ->
            ok
    end.
