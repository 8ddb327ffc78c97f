%% The Erlang side of `npm run bench`: the same workloads as bench/wtd.ts,
%% run on BEAM so both runtimes are measured on this machine in one run.
%% `serve/0` reads one workload a line from stdin ("oneway 1000000") and
%% answers each with one line of JSON, its figures ({"oneway":7.8e6}), so
%% that the runner can take turns with WTD workload by workload; it halts
%% when stdin ends. A time metric comes twice: from the wall time, and
%% (on Linux) as "cpu:<name>" from the CPU time of the scheduler threads,
%% as the Node runtimes report theirs (bench/figures.ts).
-module(wtd_bench).
-export([serve/0]).

serve() ->
    persistent_term:put(?MODULE, scheduler_stats()),
    loop().

loop() ->
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
            loop()
    end.

%% Nothing a workload left in the mailbox may be taken for the next one's answer.
flush() ->
    receive
        _ -> flush()
    after 0 -> ok
    end.

run(oneway, [N]) -> time_figures(oneway, oneway(N), per_second(N));
run(pingpong, [N]) -> time_figures(pingpong, pingpong(N), ns_each(N));
run(gen_server_call, [N]) -> time_figures(gen_server_call, gen_server_call(N), per_second(N));
run(spawn, [N]) ->
    {T, Bytes} = spawn_idle(N),
    time_figures(spawn, T, ns_each(N)) ++ [{process_memory, Bytes}];
run(skynet, [N]) -> time_figures(skynet, skynet(N), fun(Ms) -> Ms end);
run(ring, [Size, Rounds]) -> time_figures(ring, ring(Size, Rounds), per_second(Size * Rounds)).

per_second(N) -> fun(Ms) -> N / (Ms / 1000) end.
ns_each(N) -> fun(Ms) -> Ms * 1.0e6 / N end.

%% The figures of a time metric from {WallMs, CpuMs}.
time_figures(Name, {Wall, undefined}, F) -> [{Name, F(Wall)}];
time_figures(Name, {Wall, Cpu}, F) -> [{Name, F(Wall)}, {"cpu:" ++ atom_to_list(Name), F(Cpu)}].

%% A stopwatch: start() now, elapsed(Start) gives {WallMs, CpuMs} since.
start() -> {cpu_ms(), erlang:monotonic_time(nanosecond)}.

elapsed({Cpu0, T0}) ->
    Wall = (erlang:monotonic_time(nanosecond) - T0) / 1.0e6,
    case cpu_ms() of
        undefined -> {Wall, undefined};
        Cpu -> {Wall, Cpu - Cpu0}
    end.

%% /proc/self/task/*/schedstat of the scheduler threads (the normal ones and
%% the dirty CPU ones: those that run the workloads and their collections),
%% whose first field is the time the thread has run, in ns. Reading one
%% costs about 40 us of this scheduler's time; the other threads (dirty
%% I/O, the poller, aux) are left out, and so is the cost of the reading.
scheduler_stats() ->
    case file:list_dir("/proc/self/task") of
        {ok, Tids} ->
            [
                Dir ++ "/schedstat"
             || T <- Tids,
                Dir <- ["/proc/self/task/" ++ T],
                {ok, Comm} <- [file:read_file(Dir ++ "/comm")],
                string:find(Comm, "sch") =/= nomatch,
                string:find(Comm, "dirty_io") =:= nomatch
            ];
        {error, _} ->
            []
    end.

cpu_ms() ->
    case persistent_term:get(?MODULE) of
        [] -> undefined;
        Files -> lists:sum([on_cpu_ns(F) || F <- Files]) / 1.0e6
    end.

on_cpu_ns(File) ->
    {ok, Stat} = file:read_file(File),
    [Ns | _] = string:lexemes(Stat, " \n"),
    binary_to_integer(Ns).

%% messages per second, one sender, one receiver
oneway(N) ->
    Self = self(),
    T0 = start(),
    Rx = spawn(fun() -> drain(N), Self ! done end),
    send_n(Rx, N),
    receive done -> ok end,
    elapsed(T0).

drain(0) -> ok;
drain(N) -> receive _ -> drain(N - 1) end.

send_n(_, 0) -> ok;
send_n(P, N) -> P ! N, send_n(P, N - 1).

%% nanoseconds per round trip
pingpong(N) ->
    Pong = spawn(fun Loop() -> receive {From, M} -> From ! M, Loop(); stop -> ok end end),
    T0 = start(),
    ping(Pong, N),
    T = elapsed(T0),
    Pong ! stop,
    T.

ping(_, 0) -> ok;
ping(P, N) -> P ! {self(), N}, receive N -> ping(P, N - 1) end.

%% gen_server:call per second
gen_server_call(N) ->
    {ok, S} = gen_server:start(wtd_bench_server, [], []),
    T0 = start(),
    calls(S, N),
    T = elapsed(T0),
    gen_server:stop(S),
    T.

calls(_, 0) -> ok;
calls(S, N) -> N = gen_server:call(S, N), calls(S, N - 1).

%% nanoseconds per spawn, and bytes per idle process
spawn_idle(N) ->
    erlang:garbage_collect(),
    M0 = erlang:memory(processes),
    T0 = start(),
    Pids = [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, N)],
    T = elapsed(T0),
    M1 = erlang:memory(processes),
    %% As on WTD: the run ends when the last of them has ended.
    Ref = monitor(process, lists:last(Pids)),
    [P ! stop || P <- Pids],
    receive
        {'DOWN', Ref, process, _, _} -> ok
    end,
    {T, (M1 - M0) / N}.

%% milliseconds for skynet with N leaves
skynet(N) ->
    Self = self(),
    T0 = start(),
    spawn(fun() -> sky(Self, 0, N, 10) end),
    Sum = (N * (N - 1)) div 2,
    receive
        Sum -> ok
    end,
    elapsed(T0).

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
    T0 = start(),
    First ! Rounds,
    ring_main(First, Rounds),
    T = elapsed(T0),
    %% The stop goes round the ring and back here: every member has ended.
    First ! stop,
    receive
        stop -> ok
    end,
    T.

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
