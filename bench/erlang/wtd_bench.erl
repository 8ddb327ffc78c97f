%% The Erlang side of `npm run bench`: the same workloads as bench/wtd.ts,
%% run on BEAM so both runtimes are measured on this machine in one run.
%% `serve/0` reads one workload a line from stdin ("oneway 1000000") and
%% answers each with one line of JSON, its figures ({"oneway":7.8e6}), so
%% that the runner can take turns with WTD workload by workload; it halts
%% when stdin ends.
-module(wtd_bench).
-export([serve/0]).

serve() ->
    case io:get_line('') of
        eof ->
            halt(0);
        {error, _} ->
            halt(1);
        Line ->
            [Cmd | Args] = string:lexemes(string:trim(Line), " "),
            flush(),
            erlang:garbage_collect(),
            Figures = run(list_to_atom(Cmd), [list_to_integer(A) || A <- Args]),
            io:format("{~s}~n", [lists:join(",", [io_lib:format("\"~s\":~p", [K, V]) || {K, V} <- Figures])]),
            serve()
    end.

%% Nothing a workload left in the mailbox may be taken for the next one's answer.
flush() ->
    receive
        _ -> flush()
    after 0 -> ok
    end.

run(oneway, [N]) -> [{oneway, oneway(N)}];
run(pingpong, [N]) -> [{pingpong, pingpong(N)}];
run(gen_server_call, [N]) -> [{gen_server_call, gen_server_call(N)}];
run(spawn, [N]) ->
    {SpawnNs, Bytes} = spawn_idle(N),
    [{spawn, SpawnNs}, {process_memory, Bytes}];
run(skynet, [N]) -> [{skynet, skynet(N)}];
run(ring, [Size, Rounds]) -> [{ring, ring(Size, Rounds)}].

ms(T0) -> (erlang:monotonic_time(nanosecond) - T0) / 1.0e6.

%% messages per second, one sender, one receiver
oneway(N) ->
    Self = self(),
    T0 = erlang:monotonic_time(nanosecond),
    Rx = spawn(fun() -> drain(N), Self ! done end),
    send_n(Rx, N),
    receive done -> ok end,
    N / (ms(T0) / 1000).

drain(0) -> ok;
drain(N) -> receive _ -> drain(N - 1) end.

send_n(_, 0) -> ok;
send_n(P, N) -> P ! N, send_n(P, N - 1).

%% nanoseconds per round trip
pingpong(N) ->
    Pong = spawn(fun Loop() -> receive {From, M} -> From ! M, Loop(); stop -> ok end end),
    T0 = erlang:monotonic_time(nanosecond),
    ping(Pong, N),
    Ms = ms(T0),
    Pong ! stop,
    Ms * 1.0e6 / N.

ping(_, 0) -> ok;
ping(P, N) -> P ! {self(), N}, receive N -> ping(P, N - 1) end.

%% gen_server:call per second
gen_server_call(N) ->
    {ok, S} = gen_server:start(wtd_bench_server, [], []),
    T0 = erlang:monotonic_time(nanosecond),
    calls(S, N),
    Ms = ms(T0),
    gen_server:stop(S),
    N / (Ms / 1000).

calls(_, 0) -> ok;
calls(S, N) -> N = gen_server:call(S, N), calls(S, N - 1).

%% nanoseconds per spawn, and bytes per idle process
spawn_idle(N) ->
    erlang:garbage_collect(),
    M0 = erlang:memory(processes),
    T0 = erlang:monotonic_time(nanosecond),
    Pids = [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, N)],
    Ms = ms(T0),
    M1 = erlang:memory(processes),
    %% As on WTD: the run ends when the last of them has ended.
    Ref = monitor(process, lists:last(Pids)),
    [P ! stop || P <- Pids],
    receive
        {'DOWN', Ref, process, _, _} -> ok
    end,
    {Ms * 1.0e6 / N, (M1 - M0) / N}.

%% milliseconds for skynet with N leaves
skynet(N) ->
    Self = self(),
    T0 = erlang:monotonic_time(nanosecond),
    spawn(fun() -> sky(Self, 0, N, 10) end),
    Sum = (N * (N - 1)) div 2,
    receive
        Sum -> ok
    end,
    ms(T0).

sky(Parent, Num, 1, _) -> Parent ! Num;
sky(Parent, Num, Size, Div) ->
    Self = self(),
    S = Size div Div,
    [spawn(fun() -> sky(Self, Num + I * S, S, Div) end) || I <- lists:seq(0, Div - 1)],
    Parent ! collect(Div, 0).

collect(0, Sum) -> Sum;
collect(N, Sum) -> receive X -> collect(N - 1, Sum + X) end.

%% messages per second around a ring of Size processes, Rounds times
ring(Size, Rounds) ->
    Self = self(),
    First = lists:foldl(fun(_, Next) -> spawn(fun() -> ring_node(Next) end) end, Self, lists:seq(1, Size - 1)),
    T0 = erlang:monotonic_time(nanosecond),
    First ! Rounds,
    ring_main(First, Rounds),
    Ms = ms(T0),
    %% The stop goes round the ring and back here: every member has ended.
    First ! stop,
    receive
        stop -> ok
    end,
    Size * Rounds / (Ms / 1000).

ring_main(_, 0) -> ok;
ring_main(First, _) ->
    receive
        0 -> ok;
        K -> First ! K - 1, ring_main(First, K - 1)
    end.

ring_node(Next) ->
    receive
        stop -> Next ! stop;
        K -> Next ! K, ring_node(Next)
    end.
