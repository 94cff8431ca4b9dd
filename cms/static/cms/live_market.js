// The lot editor's Market tab, live: price, bids, end and watcher count as they change,
// over the bidders' own socket (/ws/v1/live, CONTRACT "Live updates"). The admin's session
// cookie makes it a staff socket, which alone is told `watchers`. Reconnects on its own.
(function () {
  "use strict";

  var PING_MS = 25000; // the server closes a socket silent for 60 s
  var RETRY_MIN_MS = 1000;
  var RETRY_MAX_MS = 15000;

  function yuan(fen) {
    // As auction.money.format_yuan: ¥1,234 or ¥1,234.50, from integer fen (no float rounding).
    var whole = String(Math.floor(fen / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    var cents = fen % 100;
    return "¥" + whole + (cents ? "." + (cents < 10 ? "0" : "") + cents : "");
  }

  function localTime(iso) {
    // The server sends its local time with the offset: shown as the panel renders it.
    return iso ? iso.slice(0, 19).replace("T", " ") : "";
  }

  function LiveLot(panel) {
    this.panel = panel;
    this.lotId = parseInt(panel.dataset.liveLot, 10);
    this.version = parseInt(panel.dataset.liveVersion, 10) || 0;
    this.url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + panel.dataset.livePath;
    var labels = document.getElementById("live-market-status-labels");
    this.labels = labels ? JSON.parse(labels.textContent) : {};
    this.state = panel.querySelector('[data-live-field="state"]');
    this.retryMs = RETRY_MIN_MS;
    this.socket = null;
    this.pinger = null;
  }

  LiveLot.prototype.field = function (name) {
    return this.panel.querySelector('[data-live-field="' + name + '"]');
  };

  LiveLot.prototype.set = function (name, text) {
    var element = this.field(name);
    if (element && element.textContent !== text) {
      element.textContent = text;
    }
  };

  LiveLot.prototype.show = function (state) {
    this.panel.dataset.liveState = state;
    if (this.state) {
      this.state.textContent = this.state.dataset[state] || "";
    }
  };

  LiveLot.prototype.apply = function (lot, version, bids, fromSnapshot) {
    if (version < this.version) {
      return; // versions only grow: an older state never replaces a newer one
    }
    var bidCountBefore = parseInt(this.field("bid_count").textContent, 10);
    this.version = version;
    this.set("status", this.labels[lot.status] || lot.status);
    if (lot.bid_count > 0) {
      this.set("current_price", yuan(lot.current_price));
    }
    this.set("bid_count", String(lot.bid_count));
    this.set("ends_at", localTime(lot.ends_at));
    var bidding = lot.status === "bidding";
    this.panel.querySelectorAll('[data-live-part="next_min_bid"]').forEach(function (element) {
      element.hidden = !bidding;
    });
    if (bidding) {
      this.set("next_min_bid", yuan(lot.next_min_bid));
    }
    if (bids && bids.length) {
      this.set("leader", bids[0].bidder); // newest first: the newest bid leads
    } else if (fromSnapshot && lot.bid_count !== bidCountBefore) {
      // A snapshot carries no bidder: bids came while this page was away.
      this.set("leader", this.state.dataset.unknownLeader);
    }
  };

  LiveLot.prototype.receive = function (message) {
    if (message.type === "snapshot" && message.lot.id === this.lotId) {
      this.apply(message.lot, message.version, null, true);
    } else if (message.type === "lot" && message.lot.id === this.lotId) {
      this.apply(message.lot, message.version, message.bids, false);
    } else if (message.type === "watchers" && message.lot_id === this.lotId) {
      this.set("watchers", String(message.count));
    }
  };

  LiveLot.prototype.connect = function () {
    var self = this;
    var socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = function () {
      self.retryMs = RETRY_MIN_MS;
      self.show("open");
      socket.send(JSON.stringify({ op: "watch", lot_ids: [self.lotId] }));
      self.pinger = setInterval(function () {
        if (socket.readyState === WebSocket.OPEN) {
          socket.send('{"op":"ping"}');
        }
      }, PING_MS);
    };
    socket.onmessage = function (event) {
      try {
        self.receive(JSON.parse(event.data));
      } catch (error) {
        if (window.console) {
          console.warn("live market:", error);
        }
      }
    };
    socket.onclose = function () {
      clearInterval(self.pinger);
      self.show("closed");
      // Backs off, with jitter, so a server restart is not met by every tab at once.
      var wait = self.retryMs * (0.5 + Math.random());
      self.retryMs = Math.min(self.retryMs * 2, RETRY_MAX_MS);
      setTimeout(function () {
        self.connect();
      }, wait);
    };
  };

  function start() {
    document.querySelectorAll("[data-live-lot]").forEach(function (panel) {
      if (!("WebSocket" in window) || panel.dataset.liveStarted) {
        return;
      }
      panel.dataset.liveStarted = "1";
      var live = new LiveLot(panel);
      live.show("connecting");
      live.connect();
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
