/* The call page: one player for the whole call, its waveforms and marks, and what clicking does.
 *
 * Everything the script needs comes from the page's <script type="application/json" id="call-data"> block
 * (turn times, timeline marks, what each score cites); text from the call is never put into the DOM here
 * except through textContent. The waveforms are drawn from peaks the server computed (GET .../peaks), and
 * wavesurfer is handed a media element with preload="none": the browser streams the audio (Range requests)
 * only when the user plays it, and never downloads the file to draw it.
 */
(function () {
  'use strict';

  var data = JSON.parse(document.getElementById('call-data').textContent);
  var player = data.player;
  var state = { ws: null, media: null, regions: null, cited: [], selected: null, ready: false };
  window.convoscopeCall = state; // for the browser tests and the console: the player and what is selected

  var COLOURS = {
    'turn-user': 'rgba(31, 95, 168, 0.16)',
    'turn-agent': 'rgba(46, 125, 50, 0.16)',
    'turn-other': 'rgba(107, 116, 128, 0.16)',
    speech: 'rgba(20, 32, 46, 0.10)',
    gap: 'rgba(255, 179, 0, 0.28)',
    overlap: 'rgba(179, 38, 30, 0.22)',
    interruption: 'rgba(179, 38, 30, 0.38)',
    backchannel: 'rgba(123, 31, 162, 0.22)',
    'missed-barge-in': 'rgba(179, 38, 30, 0.5)',
    'long-silence': 'rgba(255, 111, 0, 0.35)',
    unanswered: 'rgba(255, 111, 0, 0.25)',
    cited: 'rgba(255, 179, 0, 0.55)'
  };
  var MAX_REGIONS = 3000; // beyond this, marks are listed but not drawn (the list is the fallback anyway)

  function status(text) {
    var node = document.getElementById('player-status');
    if (node) node.textContent = text;
  }

  function clock(seconds) {
    var node = document.getElementById('clock');
    if (!node) return;
    var minutes = Math.floor(seconds / 60);
    var rest = (seconds - minutes * 60).toFixed(2);
    node.textContent = minutes + ':' + (rest.length < 5 ? '0' : '') + rest;
  }

  /* Call time (what turns and marks use) to the recording's own time, and back. */
  function fileTime(callTime) {
    return Math.max(0, callTime - ((player && player.offset) || 0));
  }

  function seek(callTime, play) {
    if (!state.ws || !isFinite(callTime)) return;
    var t = fileTime(callTime);
    var duration = state.ws.getDuration() || t;
    state.ws.setTime(Math.min(t, duration));
    clock(t);
    if (play) {
      state.ws.play().catch(function (error) {
        status('Could not play: ' + (error && error.message ? error.message : error));
      });
    }
  }

  function laneOf(role) {
    if (!player) return -1;
    for (var i = 0; i < player.lanes.length; i++) {
      if (player.lanes[i].role === role) return player.lanes[i].channel;
    }
    return -1;
  }

  function addRegion(start, end, colour, lane, id) {
    if (!state.regions) return null;
    var offset = (player && player.offset) || 0;
    var options = { start: Math.max(0, start - offset), end: Math.max(0, end - offset), color: colour,
                    drag: false, resize: false };
    if (id) options.id = id;
    if (lane >= 0 && player.lanes.length > 1) options.channelIdx = lane;
    return state.regions.addRegion(options);
  }

  function drawMarks() {
    var drawn = 0;
    data.turns.forEach(function (turn) {
      if (drawn++ > MAX_REGIONS) return;
      var role = turn[1];
      var key = role === 'user' || role === 'agent' ? 'turn-' + role : 'turn-other';
      addRegion(turn[2], turn[3], COLOURS[key], laneOf(role), 'turn-region-' + turn[0]);
    });
    data.marks.forEach(function (mark) {
      if (drawn++ > MAX_REGIONS) return;
      var kind = mark[0];
      var lane = kind === 'speech' || kind === 'backchannel' ? laneOf(mark[3]) : -1;
      var region = addRegion(mark[1], Math.max(mark[2], mark[1] + 0.01), COLOURS[kind] || COLOURS.gap, lane);
      if (region && kind === 'speech' && region.element) {
        region.element.style.height = '6px'; // a stripe under the lane: where the detector heard speech
        region.element.style.top = lane >= 0 ? 'calc(' + ((lane + 1) * 100 / player.lanes.length) + '% - 6px)' : '';
      }
    });
  }

  function startPlayer() {
    if (!player || typeof WaveSurfer === 'undefined') return;
    status('Loading waveform…');
    fetch(player.peaks, { credentials: 'same-origin' }).then(function (response) {
      if (!response.ok) {
        return response.json().then(function (body) {
          throw new Error((body && body.error && body.error.message) || ('HTTP ' + response.status));
        });
      }
      return response.json();
    }).then(function (peaks) {
      var media = document.createElement('audio');
      media.preload = 'none'; // nothing is downloaded until the user plays
      state.media = media;
      var regions = WaveSurfer.Regions.create();
      state.regions = regions;
      var channels = peaks.channels.map(function (c) { return c.peaks; });
      var split = peaks.channels.map(function (c) {
        var colour = c.role === 'user' ? '#1f5fa8' : c.role === 'agent' ? '#2e7d32' : '#6b7480';
        return { waveColor: colour, progressColor: colour };
      });
      var ws = WaveSurfer.create({
        container: '#waveform',
        media: media,
        url: player.audio,
        peaks: channels,
        duration: peaks.duration_s,
        backend: 'MediaElement',
        splitChannels: split,
        height: 56,
        normalize: false,
        cursorColor: '#14202e',
        cursorWidth: 2,
        barWidth: 2,
        barGap: 1,
        barRadius: 1,
        interact: true,
        plugins: [regions, WaveSurfer.Timeline.create({ container: '#waveform-timeline' })]
      });
      state.ws = ws;
      ws.on('ready', function () {
        state.ready = true;
        drawMarks();
        applySelection();
        var play = document.getElementById('play');
        play.disabled = false;
        status('');
      });
      ws.on('timeupdate', function (t) { clock(t); });
      ws.on('play', function () { document.getElementById('play').textContent = 'Pause'; });
      ws.on('pause', function () { document.getElementById('play').textContent = 'Play'; });
      ws.on('error', function (error) { status('Player: ' + (error && error.message ? error.message : error)); });
      regions.on('region-clicked', function (region, event) {
        event.stopPropagation();
        state.ws.setTime(region.start);
      });
    }).catch(function (error) {
      status('No waveform: ' + error.message);
    });
  }

  /* Selecting a score: its cited turns get a class, its cited stretches a region each. */
  function applySelection() {
    document.querySelectorAll('tr.turn.cited').forEach(function (row) { row.classList.remove('cited'); });
    state.cited.forEach(function (region) { region.remove(); });
    state.cited = [];
    if (!state.selected) return;
    var cites = data.scores[state.selected];
    if (!cites) return;
    cites.turns.forEach(function (index) {
      var row = document.getElementById('turn-' + index);
      if (row) row.classList.add('cited');
    });
    if (state.regions && state.ready) {
      cites.intervals.slice(0, MAX_REGIONS).forEach(function (span) {
        var region = addRegion(span[0], Math.max(span[1], span[0] + 0.02), COLOURS.cited, -1);
        if (region) state.cited.push(region);
      });
    }
  }

  function select(key) {
    state.selected = state.selected === key ? null : key;
    document.querySelectorAll('button.select-score').forEach(function (button) {
      var on = button.dataset.score === state.selected;
      button.setAttribute('aria-pressed', on ? 'true' : 'false');
      button.closest('tr').classList.toggle('selected', on);
    });
    applySelection();
  }

  document.addEventListener('click', function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    var scoreButton = target.closest('button.select-score');
    if (scoreButton) {
      select(scoreButton.dataset.score);
      return;
    }
    var seekButton = target.closest('button.seek');
    if (seekButton) {
      seek(parseFloat(seekButton.dataset.start), true);
      return;
    }
    if (target.closest('#play')) {
      if (state.ws) state.ws.playPause().catch(function (error) { status('Could not play: ' + error.message); });
      return;
    }
    // A click on a turn's row moves the player there (not a click inside its tools, documents or links).
    if (target.closest('a, button, summary, details, pre, input, select')) return;
    var row = target.closest('tr.turn');
    if (row) seek(parseFloat(row.dataset.start), false);
  });

  document.addEventListener('keydown', function (event) {
    var target = event.target;
    if (event.key === ' ' && target === document.body && state.ws) {
      event.preventDefault();
      state.ws.playPause().catch(function () {});
    }
  });

  // Rows loaded later (htmx "show more") take the selected score's highlight too.
  document.body.addEventListener('htmx:afterSwap', function () { if (state.selected) applySelection(); });

  if (player) {
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', startPlayer);
    else startPlayer();
  }
})();
